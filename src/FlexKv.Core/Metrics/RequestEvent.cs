namespace FlexKv.Core.Metrics;

/// <summary>What happened to a request, as the engine sees it (label <c>event</c> of <c>requests</c>).</summary>
internal enum RequestEvent
{
    /// <summary>A lookup offered it blocks for the first time.</summary>
    Matched = 0,
    /// <summary>Its load ended with at least one block loaded.</summary>
    Loaded = 1,
    /// <summary>Its save ended with at least one block saved.</summary>
    Saved = 2,
    /// <summary>vLLM finished it (request_finished), saved or not.</summary>
    Finished = 3,
    /// <summary>It finished while its load was planned or running: the load was cancelled.</summary>
    Aborted = 4,
    /// <summary>vLLM preempted it (its transfers were cancelled; the request stays known).</summary>
    Preempted = 5,
}

internal static class RequestEvents
{
    public const int Count = 6;

    public static readonly string[] Labels = ["matched", "loaded", "saved", "finished", "aborted", "preempted"];
}
