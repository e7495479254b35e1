"""Failures of the connector contract the harness detects (vLLM would crash, hang, leak
blocks or compute with wrong KV)."""


class ConnectorContractError(AssertionError):
    """The connector did something vLLM's scheduler or model runner does not allow."""


def expect(cond: object, msg: str) -> None:
    if not cond:
        raise ConnectorContractError(msg)
