using System.Text;
using FlexKv.Core.Engine;
using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tests.Engine;

/// <summary>
/// A <see cref="KvEngine"/> over a <see cref="DeviceKvCache"/> with blocks of <see cref="Bs"/>
/// tokens, plus the polling a vLLM scheduler does. Finished entries and failed blocks are
/// collected across polls so tests can count them.
/// </summary>
internal sealed class EngineHarness : IDisposable
{
    public const int Bs = 4;

    public EngineHarness(int cpuBlocks = 64, int deviceBlocks = 32, bool register = true, int spanBytes = 64, string extraConfig = "",
        Func<FlexKv.Core.Tiers.Ssd.IBlockDevice, FlexKv.Core.Tiers.Ssd.IBlockDevice>? wrapSsd = null,
        FlexKv.Core.Tiers.Remote.IRemoteStore? remote = null, IEnumerable<Func<FlexKv.Core.Tiers.TierContext, FlexKv.Core.Tiers.ILowerTier?>>? tiers = null)
    {
        Device = new DeviceKvCache(deviceBlocks, spanBytes);
        string json = $"{{\"num_cpu_blocks\":{cpuBlocks},\"block_bytes\":{Device.BlockBytes},\"tokens_per_block\":{Bs}," +
                      $"\"transfer_threads\":2,\"use_hugepage_cpu_buffer\":false{extraConfig}}}";
        if (tiers is not null)
        {
            if (remote is not null) json = json.Insert(json.Length - 1, ",\"remote_url\":\"redis://fake:1\"");
            Engine = KvEngine.Create(FlexKv.Core.Config.EngineOptionsJson.Parse(json), tiers, remote is null ? null : (_, _) => remote);
        }
        else if (remote is not null)
        {
            json = json.Insert(json.Length - 1, ",\"remote_url\":\"redis://fake:1\"");
            Engine = KvEngine.Create(Encoding.UTF8.GetBytes(json), (_, _) => remote);
        }
        else Engine = wrapSsd is null ? KvEngine.Create(Encoding.UTF8.GetBytes(json))
            : KvEngine.Create(FlexKv.Core.Config.EngineOptionsJson.Parse(json), FlexKv.Core.Tiers.TierRegistry.Default, wrapSsdDevice: wrapSsd);
        if (register) Engine.Devices.RegisterKvCaches(Device.Layers, deviceBlocks);
    }

    public KvEngine Engine { get; }

    public DeviceKvCache Device { get; }

    public List<(FinishedKind Kind, string Id)> Finished { get; } = new();

    public List<int> FailedBlocks { get; } = new();

    public static long[] Tokens(int n, int seed = 1)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (long)rng.Next(0, 32_000)).ToArray();
    }

    public static int[] Blocks(int first, int count) => Enumerable.Range(first, count).ToArray();

    public FlakyTransport UseFlakyTransport()
    {
        var t = new FlakyTransport(KvLayout.Create(Device.Layers, Device.NumBlocks, Device.BlockBytes));
        Engine.Devices.RegisterTransport(t);
        return t;
    }

    /// <summary>Fills device blocks so that block <c>b</c> holds the pattern of seed <c>seedBase + b</c>.</summary>
    public void FillDevice(int[] blocks, int seedBase)
    {
        foreach (int b in blocks) Device.Fill(b, seedBase + b);
    }

    /// <summary>
    /// A request that computed its KV and is saved when it ends: match, alloc with no external
    /// tokens, finish with save, launch, wait until it is reported as finished sending.
    /// </summary>
    public void Save(string id, long[] tokens, int[] blocks, string? ns = null)
    {
        byte[] nsBytes = ns is null ? [] : Encoding.UTF8.GetBytes(ns);
        Engine.GetNumNewMatchedTokens(id, tokens, tokens.Length, 0, nsBytes);
        Engine.UpdateStateAfterAlloc(id, blocks, 0);
        Assert.True(Engine.RequestFinished(id, tokens, tokens.Length, blocks, save: true, nsBytes), "the save must hold the blocks");
        Assert.Equal(1, Engine.LaunchTasks());
        WaitFor(FinishedKind.Sending, id);
    }

    /// <summary>Plans and launches the load of <paramref name="external"/> matched tokens and waits for it.</summary>
    public void Load(string id, int[] blocks, int external)
    {
        Engine.UpdateStateAfterAlloc(id, blocks, external);
        Assert.Equal(1, Engine.LaunchTasks());
        WaitFor(FinishedKind.Recving, id);
    }

    public void Poll()
    {
        var (entries, failed) = Engine.QueryFinished();
        Finished.AddRange(entries);
        FailedBlocks.AddRange(failed);
    }

    public void WaitFor(FinishedKind kind, string id, int timeoutMs = 10_000)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            Poll();
            if (Finished.Contains((kind, id))) return;
            if (sw.ElapsedMilliseconds > timeoutMs) Assert.Fail($"request '{id}' was not reported as {kind} within {timeoutMs} ms");
            Engine.WaitForCompletion(50);
        }
    }

    public int Count(FinishedKind kind, string id) => Finished.Count(e => e == (kind, id));

    /// <summary>No pins, no tasks, no requests left behind.</summary>
    public void AssertIdle()
    {
        EngineStats s = Engine.Stats();
        Assert.Equal(0, s.PinnedBlocks);
        Assert.Equal(0, s.TasksPlanned);
        Assert.Equal(0, s.TasksInFlight);
        Assert.Equal(0, s.ActiveRequests);
    }

    public void Dispose()
    {
        Engine.Dispose();
        Device.Dispose();
    }
}
