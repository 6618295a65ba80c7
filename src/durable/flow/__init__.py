"""JSON step graphs (``docs/format.md``), compiled into the same runtime as code-first workflows.

- ``_model``        pydantic models of the format (field shapes)
- ``_validate``     every problem at once, with paths; builds the compiled ``_graph``
- ``_expr``         the sandboxed expression evaluator (on simpleeval)
- ``_table``        DECISION_TABLE cells and hit policies
- ``_interpreter``  the built-in workflow's step semantics; ``_runner`` loads graphs
- ``_handlers``     the activities a flow calls (handlers, job queue, chaining)
- ``_state``        step history, active steps and variables read back from the journal
- ``_client``       definitions, user tasks and external jobs for clients
"""

from ._client import DefinitionRef as DefinitionRef
from ._client import Job as Job
from ._client import StoredDefinition as StoredDefinition
from ._validate import compile_definition as compile_definition
from ._validate import validate_definition as validate_definition

__all__ = [
    "DefinitionRef",
    "Job",
    "StoredDefinition",
    "compile_definition",
    "validate_definition",
]
