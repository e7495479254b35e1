using System.Diagnostics;

namespace FlexKv.Core.Engine;

/// <summary>
/// Debug-build checks of the thread map (docs/architecture.md): state the engine lock owns is
/// only changed by a thread that holds it. Compiled out of release builds.
/// </summary>
internal static class LockOwner
{
    [Conditional("DEBUG")]
    public static void Holds(object? sync, string what)
    {
        if (sync is not null) Debug.Assert(Monitor.IsEntered(sync), $"{what} changed without the engine lock");
    }
}
