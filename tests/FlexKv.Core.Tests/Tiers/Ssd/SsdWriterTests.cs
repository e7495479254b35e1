using System.Runtime.InteropServices;
using FlexKv.Core.Config;
using FlexKv.Core.Hashing;
using FlexKv.Core.Tiers;
using FlexKv.Core.Tiers.Ssd;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>
/// The write side with several writes in flight: a batch written before an earlier one ended is
/// neither journaled nor reported before it (the journal grows in queue order, only by blocks
/// whose bytes landed), and a reset waits for the writes queued before it.
/// </summary>
public sealed unsafe class SsdWriterTests : IDisposable
{
    private const int Slots = 16;
    private const int BlockBytes = 4096;
    private readonly string _dir = Directory.CreateTempSubdirectory("flexkv-ssd-writer-").FullName;
    private readonly byte* _cpu = (byte*)NativeMemory.AlignedAlloc(Slots * BlockBytes, 4096);

    /// <summary>A device that holds the write of <see cref="Held"/> until <see cref="Release"/> is set, and counts the slots written.</summary>
    private sealed class GatedDevice : IBlockDevice
    {
        public int Held = -1;
        public readonly ManualResetEventSlim Release = new(false);
        public readonly ManualResetEventSlim HeldEntered = new(false);
        public readonly CountdownEvent Written = new(2);

        public int NumSlots => Slots;
        public long ExtentBytes => BlockBytes;
        public bool Direct => false;

        public void Read(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors) => errors.Clear();

        public void Write(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors)
        {
            foreach (int s in slots)
            {
                if (s != Held) continue;
                HeldEntered.Set();
                Release.Wait(10_000);
            }
            errors.Clear();
            foreach (int _ in slots) Written.Signal();
        }

        public void Dispose() { }
    }

    private (SsdWriter Writer, SsdJournal Journal, GatedDevice Device) Open()
    {
        var device = new GatedDevice();
        var journal = new SsdJournal(Path.Combine(_dir, "flexkv-journal.bin"), 7, BlockBytes, 1, Slots, new UInt128[Slots]);
        journal.Start();
        var ctx = new TierContext
        {
            Options = new EngineOptions(), Fingerprint = 7, BlockBytes = BlockBytes, CpuBase = _cpu, CpuStride = BlockBytes,
            Warnings = [], ReadsDone = _ => true, WritesDone = () => { }, Metrics = new FlexKv.Core.Metrics.EngineMetrics(),
        };
        var writer = new SsdWriter(ctx, device, journal, new BlockSeal(7, null), new UInt128[Slots], stripes: 1);
        return (writer, journal, device);
    }

    private static SsdOp Write(int node, int slot) => new(SsdOpKind.Write, node, slot, slot, (UInt128)(1000 + slot), 0, false);

    private static List<TierWriteDone> WaitDone(SsdWriter w, int n)
    {
        var got = new List<TierWriteDone>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (got.Count < n && sw.ElapsedMilliseconds < 10_000)
        {
            if (w.CompletedWrites.TryDequeue(out TierWriteDone d)) got.Add(d);
            else Thread.Sleep(1);
        }
        return got;
    }

    [Fact]
    public void ALaterBatchWrittenFirst_IsJournaledAndReportedOnlyAfterTheEarlierOne()
    {
        var (writer, journal, device) = Open();
        device.Held = 3;
        writer.Add(Write(node: 30, slot: 3));
        Assert.True(device.HeldEntered.Wait(10_000)); // batch 1 is on an I/O thread, held
        writer.Add(Write(node: 50, slot: 5));         // batch 2: written by another I/O thread meanwhile
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (device.Written.CurrentCount > 1 && sw.ElapsedMilliseconds < 10_000) Thread.Sleep(1);
        Assert.Equal(1, device.Written.CurrentCount); // slot 5's bytes landed, slot 3's not yet
        Thread.Sleep(50);
        Assert.True(writer.CompletedWrites.IsEmpty);
        Assert.False(journal.Holds(5));
        Assert.Equal(SsdJournalFormat.HeaderBytes, journal.Length);

        device.Release.Set();
        List<TierWriteDone> done = WaitDone(writer, 2);
        Assert.Equal([new TierWriteDone(30, true), new TierWriteDone(50, true)], done);
        Assert.True(journal.Holds(3));
        Assert.True(journal.Holds(5));
        Assert.True(writer.Stop(10_000));
        journal.Dispose();
    }

    [Fact]
    public void AReset_WaitsForTheWritesQueuedBeforeIt()
    {
        var (writer, journal, device) = Open();
        device.Held = 2;
        writer.Add(Write(node: 20, slot: 2));
        Assert.True(device.HeldEntered.Wait(10_000));
        writer.Add(new SsdOp(SsdOpKind.Reset, -1, -1, -1, 0, 0, false));
        Thread.Sleep(50);
        device.Release.Set();
        Assert.Equal([new TierWriteDone(20, true)], WaitDone(writer, 1));
        Assert.True(writer.Stop(10_000));
        // The write was journaled before the reset emptied the journal, not after.
        Assert.Equal(0, journal.Live);
        Assert.Equal(SsdJournalFormat.HeaderBytes, journal.Length);
        journal.Dispose();
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_cpu);
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
