"""The transform, written once for every engine.

``stage`` is the stage (gate, engine, rejected rows, publish); ``plan`` decides what a run
recomputes and changes; ``kernel`` holds the cleansing rules and the indicators. Engines
(``fdp.engines``) only decide where this code runs.
"""

from fdp.transform.stage import TransformResult, transform

__all__ = ["TransformResult", "transform"]
