using FlexKv.Core.Errors;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Engine;

public class KvEngineShutdownTests
{
    [Fact]
    public async Task Shutdown_WithTasksInFlight_ReturnsPromptly()
    {
        const int n = 240;
        using var h = new EngineHarness(cpuBlocks: 512, deviceBlocks: n + 1, spanBytes: 4096);
        for (int r = 0; r < 2; r++)
            Assert.True(h.Engine.RequestFinished($"A{r}", Tokens(n * Bs + 1, seed: r), n * Bs + 1, Blocks(0, n + 1), save: true));
        Assert.Equal(2, h.Engine.LaunchTasks());

        Task shutdown = Task.Run(h.Engine.Shutdown);

        Assert.Same(shutdown, await Task.WhenAny(shutdown, Task.Delay(TimeSpan.FromSeconds(15))));
        await shutdown;
        h.Engine.Shutdown(); // idempotent
    }

    [Fact]
    public async Task Shutdown_WakesACallerBlockedInWaitWithShutDown()
    {
        using var h = new EngineHarness();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Task<bool> waiting = Task.Run(() => h.Engine.WaitForCompletion(20_000));
        await Task.Delay(100);
        h.Engine.Shutdown();

        Assert.Same(waiting, await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromSeconds(10))));
        var ex = await Assert.ThrowsAsync<FlexKvException>(() => waiting);
        Assert.Equal(FlexKvStatus.ShutDown, ex.Status);
        Assert.True(sw.ElapsedMilliseconds < 10_000, $"waited {sw.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Shutdown_ThenAnyCall_ThrowsShutDown()
    {
        using var h = new EngineHarness();
        long[] tokens = Tokens(9);
        h.Engine.GetNumNewMatchedTokens("A", tokens, 9, 0);
        h.Engine.Shutdown();

        Action[] calls =
        [
            () => h.Engine.GetNumNewMatchedTokens("B", tokens, 9, 0),
            () => h.Engine.UpdateStateAfterAlloc("A", Blocks(0, 3), 0),
            () => h.Engine.RequestFinished("A", tokens, 9, Blocks(0, 3), save: true),
            () => h.Engine.LaunchTasks(),
            () => h.Engine.QueryFinished(),
            () => h.Engine.Stats(),
            () => h.Engine.Reset(),
            () => h.Engine.CancelRequest("A"),
            () => h.Engine.WaitForCompletion(1),
            () => h.Engine.Devices.RegisterKvCaches(h.Device.Layers, h.Device.NumBlocks),
        ];
        foreach (Action call in calls)
            Assert.Equal(FlexKvStatus.ShutDown, Assert.Throws<FlexKvException>(call).Status);
    }
}
