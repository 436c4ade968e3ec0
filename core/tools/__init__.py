"""Tools the model may call: the abstraction, the toolbox that runs them, and the tools themselves."""
