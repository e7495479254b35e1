namespace FlexKv.Core.Engine;

/// <summary>Kinds of entries in a finished-task report (values are part of the C ABI).</summary>
internal enum FinishedKind : byte
{
    /// <summary>The request's load ended (vLLM's finished_recving).</summary>
    Recving = 1,
    /// <summary>The request's save ended and its blocks may be freed (vLLM's finished_sending).</summary>
    Sending = 2,
}
