using FlexKv.Core.Tests.Engine;

namespace FlexKv.Core.Tests.Engine;

/// <summary>The thread map's debug checks fire: state the engine lock owns changes only under it.</summary>
public class ThreadMapTests
{
#if DEBUG
    [Fact]
    public void TheIndex_ChangedWithoutTheEngineLock_FailsInDebugBuilds()
    {
        using var h = new EngineHarness();
        long[] tokens = EngineHarness.Tokens(2 * EngineHarness.Bs + 1);
        h.Save("a", tokens, EngineHarness.Blocks(0, 2));
        var (_, index, _) = h.Engine.Internals;
        // The test host turns a failed Debug.Assert into an exception instead of ending the process.
        Assert.ThrowsAny<Exception>(() => index.Pin(0));
    }
#endif
}
