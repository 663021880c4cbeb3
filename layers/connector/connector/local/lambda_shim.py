"""Run the real handlers when the real state machine invokes a Lambda function under moto.

moto executes the ASL and sends every ``arn:aws:states:::lambda:invoke`` to
``LambdaSimpleBackend.invoke`` (``shared/reference/local-stack.md``). :class:`LambdaDispatcher` replaces
that one method: it finds the function's ``CodeUri`` + ``Handler`` in ``template.yaml``, imports the
handler module from its folder and calls it in-process with the event and a Lambda-like context. A handler
exception comes back as a Lambda *function error* (``x-amz-function-error: Unhandled`` and an
``{"errorType", "errorMessage"}`` body), so Retry and Catch in the ASL see its ``errorType``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from connector.local.template import FunctionSpec

_log = logging.getLogger("connector.local.lambda")


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int = 60

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


class LambdaDispatcher:
    """Dispatch moto Lambda invocations to the template's handlers, in this process.

    ``functions`` maps the deployed function *name* (as moto knows it) to its :class:`FunctionSpec`;
    ``root`` is the project folder the ``CodeUri`` paths are relative to. ``invocations`` counts calls per
    function name. Thread-safe (moto runs Map iterations on threads).
    """

    def __init__(self, functions: dict[str, FunctionSpec], root: Path) -> None:
        self.functions = functions
        self.root = root
        self.invocations: dict[str, int] = {}
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self.before_invoke: Callable[[str, dict[str, Any]], None] | None = None

    def handler_for(self, name: str) -> Callable[..., Any]:
        """Import (once) and return the handler callable of function ``name``."""
        with self._lock:
            if name not in self._handlers:
                spec = self.functions[name]
                module_file, _, attr = spec.handler.rpartition(".")
                path = self.root / spec.code_uri / f"{module_file.replace('.', '/')}.py"
                module_spec = importlib.util.spec_from_file_location(f"lambda_{spec.logical_id}_{module_file}", path)
                if module_spec is None or module_spec.loader is None:
                    raise ImportError(f"cannot import handler {spec.handler} from {path}")
                module = importlib.util.module_from_spec(module_spec)
                module_spec.loader.exec_module(module)
                self._handlers[name] = getattr(module, attr)
            return self._handlers[name]

    def invoke(self, backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
        """The replacement of ``LambdaSimpleBackend.invoke`` (same arguments, ``backend`` is moto's ``self``)."""
        function = backend.get_function(function_name, qualifier)
        name = function.function_name
        spec = self.functions[name]
        event = json.loads(body) if body else {}
        with self._lock:
            self.invocations[name] = self.invocations.get(name, 0) + 1
        context = LambdaContext(
            function_name=name,
            memory_limit_in_mb=spec.memory,
            invoked_function_arn=function.function_arn,
            aws_request_id=str(uuid.uuid4()),
            timeout_seconds=spec.timeout,
        )
        try:
            if self.before_invoke:
                self.before_invoke(name, event)
            result = self.handler_for(name)(event, context)
        except Exception as error:  # noqa: BLE001 - every handler failure becomes a Lambda function error
            _log.debug("handler %s raised", name, exc_info=True)
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
        return json.dumps(result, default=str).encode()

    @contextmanager
    def patched(self) -> Iterator[None]:
        """While active, moto's Lambda invocations run the template's handlers."""
        from moto.awslambda_simple.models import LambdaSimpleBackend

        dispatcher = self

        def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
            return dispatcher.invoke(backend, function_name, qualifier, body, headers, response_headers)

        with mock.patch.object(LambdaSimpleBackend, "invoke", invoke):
            yield
