using FlexKv.Core.Engine;
using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tiers.Ssd;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>The journal stays bounded while running, survives an abandoned compaction, has no size limit at open, and says why blocks were not reused.</summary>
public class SsdJournalTests
{
    private const int Bs = EngineHarness.Bs;

    private static string JournalOf(SsdEngineFixture fx) => Path.Combine(fx.Dirs[0], "flexkv-journal.bin");

    private static void SaveThree(SsdEngineFixture fx, long[] tokens, int[] src)
    {
        using var h = fx.Open();
        h.FillDevice(src, 11);
        h.Save("a", tokens, src);
        SsdEngineFixture.WaitSsdWritten(h, 3);
    }

    private static void AssertServesThree(EngineHarness h, long[] tokens, int[] src)
    {
        Assert.Equal(3, h.Engine.Stats().SsdRestoredBlocks);
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        int[] dst = EngineHarness.Blocks(30, 3);
        h.Load("b", dst, 3 * Bs);
        Assert.Empty(h.FailedBlocks);
        for (int i = 0; i < 3; i++) Assert.Equal(h.Device.Pattern(11 + src[i]), h.Device.Read(dst[i]));
    }

    [Fact]
    public void ManyWrites_KeepTheJournalBounded_AndItStillRestoresEveryBlock()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        string journal = JournalOf(fx);
        // Every block written to a full 64-slot SSD appends a put and (for the one it evicts) a
        // remove: 1,600 x 8 blocks would be ~1.6 MB of journal without compaction.
        const int requests = 1600;
        long largest = 0, used;
        using (var h = fx.Open(cpuBlocks: 64, ssdBlocks: 64))
        {
            for (int r = 0; r < requests; r++)
            {
                h.Save($"r{r}", EngineHarness.Tokens(8 * Bs + 1, seed: 1000 + r), EngineHarness.Blocks(8 * (r % 8), 8));
                if (r % 4 != 3) continue;
                SsdEngineFixture.WaitSsdWritten(h, h.Engine.Stats().BlocksSaved - h.Engine.Stats().BlocksDropped);
                largest = Math.Max(largest, new FileInfo(journal).Length);
            }
            EngineStats s = h.Engine.Stats();
            Assert.True(s.SsdBlocksWritten >= 12_000, $"only {s.SsdBlocksWritten} blocks reached SSD");
            used = s.SsdBlocksUsed;
        }
        // A batch appends at most 64 records (4 KiB) before the writer checks the size again.
        long bound = SsdJournal.CompactFloorBytes + 2 * (64 + 64 * 64) + 4096;
        Assert.True(largest <= bound, $"the journal reached {largest} bytes (bound {bound})");
        using var h2 = fx.Open(cpuBlocks: 64, ssdBlocks: 64);
        Assert.Equal(used, h2.Engine.Stats().SsdRestoredBlocks);
        Assert.Equal(64 + 64 * used, new FileInfo(journal).Length);
        Assert.DoesNotContain(h2.Engine.Stats().Warnings, w => w.Contains("journal"));
    }

    [Fact]
    public void ACompactionAbandonedMidway_TempFileLeft_StillReopensWithTheBlocks()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        int[] src = EngineHarness.Blocks(0, 3);
        SaveThree(fx, tokens, src);
        // What kill -9 during a compaction leaves: a half-written copy next to the intact journal.
        byte[] whole = File.ReadAllBytes(JournalOf(fx));
        File.WriteAllBytes(JournalOf(fx) + ".tmp", whole.AsSpan(0, 64 + 40).ToArray());
        using var h = fx.Open();
        AssertServesThree(h, tokens, src);
        Assert.False(File.Exists(JournalOf(fx) + ".tmp"));
    }

    [Fact]
    public void AReplaceThatFailsMidway_LeavesTheOldFileWhole()
    {
        string dir = Directory.CreateTempSubdirectory("flexkv-durable-").FullName;
        try
        {
            string path = Path.Combine(dir, "f");
            File.WriteAllText(path, "old content");
            Assert.Throws<IOException>(() => DurableFile.Replace(path, h =>
            {
                RandomAccess.Write(h, "new"u8, 0);
                throw new IOException("disk gone");
            }, out _));
            Assert.Equal("old content", File.ReadAllText(path));
            Assert.False(File.Exists(path + ".tmp"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AJournalOver2GiB_IsReadAsAStream_NotDiscarded()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        int[] src = EngineHarness.Blocks(0, 3);
        SaveThree(fx, tokens, src);
        long valid = new FileInfo(JournalOf(fx)).Length;
        using (var f = new FileStream(JournalOf(fx), FileMode.Open, FileAccess.Write))
            f.SetLength(valid + (5L << 29)); // 2.5 GiB more, sparse: zeros, which read as a torn tail
        using var h = fx.Open();
        AssertServesThree(h, tokens, src);
        Assert.Contains(h.Engine.Stats().Warnings, w => w.Contains($"{(5L << 29) / 64} torn records"));
        Assert.Equal(valid, new FileInfo(JournalOf(fx)).Length);
    }

    [Fact]
    public void EveryReasonBlocksAreNotReused_IsAWarning()
    {
        using var fx = new SsdEngineFixture(dirs: 2);
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        int[] src = EngineHarness.Blocks(0, 3);

        SaveThree(fx, tokens, src);
        using (var h = fx.Open(extra: ",\"model_name\":\"another\""))
            Assert.Contains(h.Engine.Stats().Warnings, w => w.Contains("was not reused (cache fingerprint differs"));

        SaveThree(fx, tokens, src);
        string oneDir = $",\"ssd_cache_gb\":0.001,\"ssd_cache_dir\":\"{fx.Dirs[0]}\"";
        using (var h = new EngineHarness(extraConfig: oneDir))
            Assert.Contains(h.Engine.Stats().Warnings, w => w.Contains("was not reused (the number of SSD directories differs"));

        SaveThree(fx, tokens, src);
        using (var f = new FileStream(JournalOf(fx), FileMode.Append)) f.Write(new byte[100]); // a record and a half, torn
        using (var h = fx.Open())
        {
            Assert.Contains(h.Engine.Stats().Warnings, w => w.Contains("2 torn records"));
            Assert.Equal(3, h.Engine.Stats().SsdRestoredBlocks);
        }

        File.Delete(JournalOf(fx));
        File.CreateSymbolicLink(JournalOf(fx), "flexkv-journal.bin"); // open fails: too many levels of links
        using (var h = fx.Open())
            Assert.Contains(h.Engine.Stats().Warnings, w => w.Contains("was not reused (the journal is unreadable"));
        using (var h = fx.Open())
            Assert.Empty(h.Engine.Stats().Warnings);

        SaveThree(fx, tokens, src);
        using (var h = fx.Open(extra: ",\"ssd_persist\":false,\"model_name\":\"another\""))
            Assert.Empty(h.Engine.Stats().Warnings); // starting empty was asked for: nothing to warn about
    }
}
