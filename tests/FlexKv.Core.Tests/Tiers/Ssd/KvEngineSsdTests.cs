using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using FlexKv.Core.Tests.Engine;

namespace FlexKv.Core.Tests.Tiers.Ssd;

public class KvEngineSsdTests
{
    private const int Bs = EngineHarness.Bs;

    // 6 blocks saved, then 4 others push most of them out of a CPU tier of 6: served from SSD.
    [Fact]
    public void Get_BlocksEvictedFromCpu_AreLoadedFromSsdByteExact()
    {
        using var fx = new SsdEngineFixture();
        using var h = fx.Open(cpuBlocks: 6);
        long[] tokens = EngineHarness.Tokens(6 * Bs + 1);
        int[] src = EngineHarness.Blocks(0, 6);
        h.FillDevice(src, 100);
        h.Save("a", tokens, src);
        SsdEngineFixture.WaitSsdWritten(h, 6);
        h.Save("b", EngineHarness.Tokens(4 * Bs + 1, seed: 9), EngineHarness.Blocks(20, 4)); // pushes a's blocks out of CPU
        SsdEngineFixture.WaitSsdWritten(h, 10);
        Assert.True(h.Engine.Stats().Evictions > 0);

        Assert.Equal(6 * Bs, h.Engine.GetNumNewMatchedTokens("c", tokens, tokens.Length, 0));
        int[] dst = EngineHarness.Blocks(40, 6);
        h.Load("c", dst, 6 * Bs);
        Assert.Empty(h.FailedBlocks);
        for (int i = 0; i < 6; i++) Assert.Equal(h.Device.Pattern(100 + src[i]), h.Device.Read(dst[i]));
        Assert.True(h.Engine.Stats().SsdBlocksRead > 0);
        h.Engine.RequestFinished("c", [], tokens.Length, dst, save: false);
        h.AssertIdle();
    }

    [Fact]
    public void Restart_ReopensTheSsdCache_AndServesHitsAtOnce()
    {
        using var fx = new SsdEngineFixture();
        long[] tokens = EngineHarness.Tokens(5 * Bs + 1);
        int[] src = EngineHarness.Blocks(0, 5);
        using (var h = fx.Open())
        {
            h.FillDevice(src, 7);
            h.Save("a", tokens, src);
            SsdEngineFixture.WaitSsdWritten(h, 5);
        }
        using var h2 = fx.Open();
        Assert.Equal(5, h2.Engine.Stats().SsdRestoredBlocks);
        Assert.Equal(5 * Bs, h2.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        int[] dst = EngineHarness.Blocks(30, 5);
        h2.Load("b", dst, 5 * Bs);
        Assert.Empty(h2.FailedBlocks);
        for (int i = 0; i < 5; i++) Assert.Equal(h2.Device.Pattern(7 + src[i]), h2.Device.Read(dst[i]));
    }

    [Fact]
    public void Restart_WithAnotherFingerprint_StartsEmptyAndNeverReuses()
    {
        using var fx = new SsdEngineFixture();
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        using (var h = fx.Open())
        {
            h.Save("a", tokens, EngineHarness.Blocks(0, 3));
            SsdEngineFixture.WaitSsdWritten(h, 3);
        }
        using var h2 = fx.Open(extra: ",\"model_name\":\"another-model\"");
        Assert.Equal(0, h2.Engine.Stats().SsdRestoredBlocks);
        Assert.Contains("fingerprint", h2.Engine.SsdDiscardReason);
        Assert.Equal(0, h2.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
    }

    [Fact]
    public void SecondEngine_OnTheSameDirectory_IsRefused()
    {
        using var fx = new SsdEngineFixture();
        using var h = fx.Open();
        var e = Assert.Throws<FlexKvException>(() => fx.Open());
        Assert.Equal(FlexKvStatus.InvalidState, e.Status);
        Assert.Contains("in use by another FlexKv engine", e.Message);
    }

    [Fact]
    public void CorruptedBlock_IsDetected_ReportedAsLoadError_AndDropped()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        int[] src = EngineHarness.Blocks(0, 3);
        using (var h = fx.Open())
        {
            h.FillDevice(src, 3);
            h.Save("a", tokens, src);
            SsdEngineFixture.WaitSsdWritten(h, 3);
        }
        // Flip a byte of the second block on disk (slot 1 at offset 4096 of the only file).
        string file = Path.Combine(fx.Dirs[0], "flexkv-blocks.dat");
        using (var f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 4096 + 10;
            int b = f.ReadByte();
            f.Position = 4096 + 10;
            f.WriteByte((byte)(b ^ 0x5A));
        }
        using var h2 = fx.Open();
        Assert.Equal(3 * Bs, h2.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        int[] dst = EngineHarness.Blocks(30, 3);
        h2.Load("b", dst, 3 * Bs);
        Assert.Equal([31], h2.FailedBlocks);
        Assert.Equal(1, h2.Engine.Stats().SsdChecksumFailures);
        Assert.Equal(h2.Device.Pattern(3 + src[0]), h2.Device.Read(dst[0]));
        h2.Engine.RequestFinished("b", [], tokens.Length, dst, save: false);
        // The bad block left the index: only the first block matches now.
        Assert.Equal(Bs, h2.Engine.GetNumNewMatchedTokens("c", tokens, tokens.Length, 0));
    }

    [Fact]
    public void DiskFull_StopsSsdWrites_AndEverythingElseKeepsWorking()
    {
        using var fx = new SsdEngineFixture();
        using var h = fx.Open(flaky: true);
        fx.Flaky!.DiskFull = true;
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        h.FillDevice(EngineHarness.Blocks(0, 3), 1);
        h.Save("a", tokens, EngineHarness.Blocks(0, 3));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!h.Engine.Stats().SsdFull && sw.ElapsedMilliseconds < 5000) Thread.Sleep(5);
        EngineStats s = h.Engine.Stats();
        Assert.True(s.SsdFull);
        Assert.Equal(0, s.SsdBlocksUsed);
        Assert.Contains(h.Engine.Warnings, w => w.Contains("full"));
        int writes = fx.Flaky.Writes;
        h.Save("b", EngineHarness.Tokens(2 * Bs + 1, seed: 5), EngineHarness.Blocks(10, 2));
        Assert.Equal(writes, fx.Flaky.Writes); // no more SSD writes
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("c", tokens, tokens.Length, 0)); // CPU still serves
        h.Load("c", EngineHarness.Blocks(30, 3), 3 * Bs);
        Assert.Empty(h.FailedBlocks);
    }

    [Fact]
    public void ReadError_FailsOnlyThatBlock()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        using var h = fx.Open(cpuBlocks: 3, flaky: true);
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        h.FillDevice(EngineHarness.Blocks(0, 3), 1);
        h.Save("a", tokens, EngineHarness.Blocks(0, 3));
        SsdEngineFixture.WaitSsdWritten(h, 3);
        h.Save("b", EngineHarness.Tokens(3 * Bs + 1, seed: 4), EngineHarness.Blocks(10, 3)); // a leaves the CPU
        SsdEngineFixture.WaitSsdWritten(h, 6);
        fx.Flaky!.FailReads.Add(2); // a's third block
        Assert.Equal(3 * Bs, h.Engine.GetNumNewMatchedTokens("c", tokens, tokens.Length, 0));
        h.Load("c", EngineHarness.Blocks(30, 3), 3 * Bs);
        Assert.Equal([32], h.FailedBlocks);
        Assert.Equal(1, h.Engine.Stats().SsdReadErrors);
    }

    [Fact]
    public void WriteError_LeavesTheBlockOffSsd()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        using var h = fx.Open(flaky: true);
        fx.Flaky!.FailWrites.Add(1);
        h.Save("a", EngineHarness.Tokens(3 * Bs + 1), EngineHarness.Blocks(0, 3));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (h.Engine.Stats().SsdWriteErrors == 0 && sw.ElapsedMilliseconds < 5000) Thread.Sleep(5);
        Thread.Sleep(50);
        EngineStats s = h.Engine.Stats();
        Assert.Equal(1, s.SsdWriteErrors);
        Assert.Equal(0, s.PinnedBlocks);
    }

    [Fact]
    public void SsdCapacity_IsRespected_WithLruEviction()
    {
        using var fx = new SsdEngineFixture();
        using var h = fx.Open(cpuBlocks: 4, ssdBlocks: 8);
        for (int r = 0; r < 6; r++)
        {
            h.Save($"r{r}", EngineHarness.Tokens(3 * Bs + 1, seed: 50 + r), EngineHarness.Blocks(3 * r, 3));
            Thread.Sleep(20);
            h.Engine.Stats();
        }
        EngineStats s = h.Engine.Stats();
        Assert.True(s.SsdBlocksUsed <= 8);
        Assert.True(s.SsdEvictions > 0);
    }

    [Fact]
    public void UnwritableDirectory_IsAClearConfigurationError()
    {
        using var fx = new SsdEngineFixture();
        File.WriteAllText(Path.Combine(fx.Root, "file"), "x");
        string cfg = $",\"ssd_cache_gb\":0.001,\"ssd_cache_dir\":\"{Path.Combine(fx.Root, "file", "sub")}\"";
        var e = Assert.Throws<FlexKvException>(() => new EngineHarness(extraConfig: cfg));
        Assert.Equal(FlexKvStatus.InvalidConfig, e.Status);
        Assert.Contains("ssd_cache_dir", e.Message);
    }

    [Fact]
    public void Directories_AreCreatedPrivate()
    {
        using var fx = new SsdEngineFixture();
        using var h = fx.Open();
        foreach (string d in fx.Dirs)
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(d));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(d, "flexkv-blocks.dat")));
        }
    }

    [Fact]
    public void Reset_DropsSsdBlocksToo_AndRestartFindsNone()
    {
        using var fx = new SsdEngineFixture();
        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        using (var h = fx.Open())
        {
            h.Save("a", tokens, EngineHarness.Blocks(0, 3));
            SsdEngineFixture.WaitSsdWritten(h, 3);
            h.Engine.Reset();
            Assert.Equal(0, h.Engine.Stats().SsdBlocksUsed);
            Assert.Equal(0, h.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        }
        using var h2 = fx.Open();
        Assert.Equal(0, h2.Engine.Stats().SsdRestoredBlocks);
    }
}
