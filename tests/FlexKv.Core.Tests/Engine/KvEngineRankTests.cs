using FlexKv.Core.Devices.Cuda;
using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Transfer;
using static FlexKv.Core.Tests.Engine.EngineHarness;

namespace FlexKv.Core.Tests.Engine;

/// <summary>
/// Tensor-parallel ranks: each rank's shard is a <see cref="DeviceKvCache"/> of this process
/// reached with process_vm_* (on our own pid), so the rank logic runs for real without workers.
/// </summary>
public class KvEngineRankTests
{
    private static readonly int Self = Environment.ProcessId;
    private static readonly bool HasDriver = System.Runtime.InteropServices.NativeLibrary.TryLoad("libcuda.so.1", out _);

    private sealed class TwoRanks : IDisposable
    {
        // The engine's block holds both ranks' halves: 4 spans of 64 bytes in all, 2 x 4 spans of 32 per rank.
        public readonly EngineHarness H = new(register: false, spanBytes: 64);
        public readonly DeviceKvCache[] Shards = [new DeviceKvCache(32, spanBytes: 32), new DeviceKvCache(32, spanBytes: 32)];

        public bool Register(int rank, DeviceKvCache? shard = null)
        {
            shard ??= Shards[rank];
            return H.Engine.Devices.RegisterRankKvCaches(rank, 2, Self, shard.Layers, shard.NumBlocks);
        }

        /// <summary>Registers both ranks, fills their first <paramref name="blocks"/> blocks and saves them; returns the tokens.</summary>
        public long[] RegisterAndSave(int blocks)
        {
            Register(0);
            Register(1);
            for (int b = 0; b < blocks; b++)
            {
                Shards[0].Fill(b, 1000 + b);
                Shards[1].Fill(b, 2000 + b);
            }
            long[] tokens = Tokens(blocks * Bs + 1);
            H.Save("A", tokens, Blocks(0, blocks));
            return tokens;
        }

        public void Dispose()
        {
            H.Dispose();
            foreach (var s in Shards) s.Dispose();
        }
    }

    [Fact]
    public void RegisterRank_AllRanks_RoundTripsEachRanksShard()
    {
        using var t = new TwoRanks();
        Assert.False(t.Register(0));
        Assert.False(t.H.Engine.IsRegistered);
        Assert.True(t.Register(1));
        foreach (var s in t.Shards) for (int b = 0; b < 3; b++) s.Fill(b, 100 * s.SpanBytes + b + (s == t.Shards[0] ? 0 : 7));
        long[] tokens = Tokens(3 * Bs + 1);

        t.H.Save("A", tokens, Blocks(0, 3));
        Assert.Equal(3 * Bs, t.H.Engine.GetNumNewMatchedTokens("B", tokens, tokens.Length, 0, []));
        t.H.Load("B", Blocks(10, 3), 3 * Bs);

        foreach (var s in t.Shards)
            for (int b = 0; b < 3; b++) Assert.Equal(s.Read(b), s.Read(10 + b));
    }

    [Fact]
    public void RegisterRank_ShardWithOtherBlockCount_IsRefusedNamingBoth()
    {
        using var t = new TwoRanks();
        using var small = new DeviceKvCache(16, spanBytes: 32);
        t.Register(0);

        var ex = Assert.Throws<FlexKvException>(() => t.Register(1, small));

        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
        Assert.Contains("rank 1 has 16 blocks, rank 0 32", ex.Message);
        Assert.True(t.Register(1)); // the right shard is still accepted
    }

    [Fact]
    public void RegisterRank_OtherWorldSize_IsRefused()
    {
        using var t = new TwoRanks();
        t.Register(0);
        using var quarter = new DeviceKvCache(32, spanBytes: 16);

        var ex = Assert.Throws<FlexKvException>(() =>
            t.H.Engine.Devices.RegisterRankKvCaches(1, 4, Self, quarter.Layers, quarter.NumBlocks));

        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
        Assert.Contains("world size is 4", ex.Message);
    }

    [Fact]
    public void DeregisterRank_StopsOffersUntilTheRankRegistersAgain()
    {
        using var t = new TwoRanks();
        long[] tokens = t.RegisterAndSave(2);

        t.H.Engine.Devices.DeregisterRank(1);

        Assert.False(t.H.Engine.IsRegistered);
        Assert.Equal(0, t.H.Engine.GetNumNewMatchedTokens("B", tokens, tokens.Length, 0, []));
        var ex = Assert.Throws<FlexKvException>(() => t.H.Engine.Devices.DeregisterRank(1));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
        Assert.True(t.Register(1));
        Assert.Equal(2 * Bs, t.H.Engine.GetNumNewMatchedTokens("C", tokens, tokens.Length, 0, []));
        t.H.Load("C", Blocks(5, 2), 2 * Bs);
        Assert.Equal(t.Shards[0].Read(0), t.Shards[0].Read(5));
        Assert.Equal(t.Shards[1].Read(0), t.Shards[1].Read(5));
        Assert.False(t.Shards[1].IsZero(5));
    }

    [Fact]
    public void RegisterRank_WhileALoadIsInFlight_ReplacesTheRankWithoutDraining()
    {
        using var t = new TwoRanks();
        long[] tokens = t.RegisterAndSave(2);
        t.H.Engine.GetNumNewMatchedTokens("B", tokens, tokens.Length, 0, []);
        t.H.Engine.UpdateStateAfterAlloc("B", Blocks(5, 2), 2 * Bs); // planned, not launched

        Assert.True(t.Register(1)); // a restarted worker

        t.H.Engine.LaunchTasks();
        t.H.WaitFor(FinishedKind.Recving, "B");
        Assert.Empty(t.H.FailedBlocks);
        Assert.Equal(t.Shards[1].Read(1), t.Shards[1].Read(6));
    }

    [Fact]
    public void RegisterRankCuda_WithoutADriver_IsNotSupportedAndTheEngineKeepsWorking()
    {
        using var t = new TwoRanks();
        var handles = new CudaIpcDesc[t.Shards[1].Layers.Length];
        for (int i = 0; i < handles.Length; i++) "0000:3b:00.0"u8.CopyTo(handles[i].PciBusId);

        var ex = Assert.Throws<FlexKvException>(() =>
            t.H.Engine.Devices.RegisterRankCudaKvCaches(1, 2, handles, t.Shards[1].Layers, t.Shards[1].NumBlocks));

        if (!HasDriver)
        {
            Assert.Equal(FlexKvStatus.NotSupported, ex.Status);
            Assert.Contains("libcuda.so.1", ex.Message);
        } // with a driver the made-up handles fail to map instead
        t.Register(0);
        Assert.True(t.Register(1));
    }

    [Fact]
    public void RegisterRankCuda_BadInput_IsRefusedBeforeTouchingTheDriver()
    {
        using var t = new TwoRanks();
        var layers = t.Shards[1].Layers;
        var noBusId = new CudaIpcDesc[layers.Length];

        var tooFew = Assert.Throws<FlexKvException>(() => t.H.Engine.Devices.RegisterRankCudaKvCaches(1, 2, noBusId[..1], layers, 32));
        var empty = Assert.Throws<FlexKvException>(() => t.H.Engine.Devices.RegisterRankCudaKvCaches(1, 2, noBusId, layers, 32));

        Assert.Contains("IPC handles for", tooFew.Message);
        Assert.Contains("PCI bus id", empty.Message);
        Assert.Equal(FlexKvStatus.InvalidArgument, empty.Status);
    }
}
