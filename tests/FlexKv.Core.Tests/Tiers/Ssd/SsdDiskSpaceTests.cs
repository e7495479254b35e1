using System.Globalization;
using System.Text;
using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using FlexKv.Core.Tests.Engine;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>The SSD files never take more than the filesystem has, and a failed create leaves no allocation behind.</summary>
public class SsdDiskSpaceTests
{
    private const int Bs = EngineHarness.Bs;

    private static string Config(double gb, params string[] dirs) =>
        $",\"ssd_cache_gb\":{gb.ToString("R", CultureInfo.InvariantCulture)},\"ssd_cache_dir\":\"{string.Join(';', dirs)}\"";

    [TmpfsFact]
    public void SizeBeyondTheFreeSpace_IsAConfigError_NamingTheSizeAndTheFreeSpace_AndAllocatesNothing()
    {
        using var fs = new SmallFilesystem(mib: 16);
        string dir = Path.Combine(fs.Root, "cache");
        long free = fs.FreeBytes;
        foreach (double gb in new[] { 1e308, 32.0 / 1024 })
        {
            var e = Assert.Throws<FlexKvException>(() => new EngineHarness(extraConfig: Config(gb, dir)));
            Assert.Equal(FlexKvStatus.InvalidConfig, e.Status);
            Assert.Contains("'ssd_cache_gb'", e.Message);
            Assert.Contains(gb.ToString(CultureInfo.InvariantCulture) + " GiB", e.Message);
            Assert.Contains($"{free} bytes", e.Message);
            Assert.False(File.Exists(Path.Combine(dir, "flexkv-blocks.dat")));
            Assert.Equal(free, fs.FreeBytes);
        }
    }

    [TmpfsFact]
    public void Reopening_DoesNotCountTheFilesOwnAllocationAgainstTheFreeSpace()
    {
        using var fs = new SmallFilesystem(mib: 32);
        string dir = Path.Combine(fs.Root, "cache");
        double gb = 20.0 / 1024; // 20 MiB of 32: a second 20 MiB would not fit, the same file again must
        long[] tokens = EngineHarness.Tokens(4 * Bs + 1);
        using (var h = new EngineHarness(deviceBlocks: 64, extraConfig: Config(gb, dir)))
        {
            h.FillDevice(EngineHarness.Blocks(0, 4), 5);
            h.Save("a", tokens, EngineHarness.Blocks(0, 4));
            SsdEngineFixture.WaitSsdWritten(h, 4);
        }
        Assert.True(fs.FreeBytes < 20L << 20);
        using var h2 = new EngineHarness(deviceBlocks: 64, extraConfig: Config(gb, dir));
        Assert.Equal(4, h2.Engine.Stats().SsdRestoredBlocks);
    }

    [Fact]
    public void FailureWhileCreatingTheFiles_RemovesWhatWasAllocated()
    {
        using var fx = new SsdEngineFixture(dirs: 2);
        // The second directory's cache file cannot be opened (it is a directory): the first one was made by then.
        Directory.CreateDirectory(Path.Combine(fx.Dirs[1], "flexkv-blocks.dat"));
        var e = Assert.Throws<FlexKvException>(() => fx.Open());
        Assert.Contains("ssd_cache_dir", e.Message);
        Assert.False(File.Exists(Path.Combine(fx.Dirs[0], "flexkv-blocks.dat")));
    }

    [Fact]
    public void FailureLaterInCreate_RemovesNewFiles_AndKeepsAnExistingCacheIntact()
    {
        using var fx = new SsdEngineFixture(dirs: 2);
        string cfg = Config(64 * 4096.0 / (1L << 30), fx.Dirs);
        string[] files = fx.Dirs.Select(d => Path.Combine(d, "flexkv-blocks.dat")).ToArray();

        Assert.Throws<FlexKvException>(() => CreateWithFailingRemote(cfg));
        Assert.All(files, f => Assert.False(File.Exists(f)));

        long[] tokens = EngineHarness.Tokens(3 * Bs + 1);
        int[] src = EngineHarness.Blocks(0, 3);
        using (var h = fx.Open())
        {
            h.FillDevice(src, 9);
            h.Save("a", tokens, src);
            SsdEngineFixture.WaitSsdWritten(h, 3);
        }
        long[] sizes = files.Select(f => new FileInfo(f).Length).ToArray();
        // Same size, a larger one (the files grow first), a smaller one (they would shrink) and another
        // fingerprint (the journal would be discarded): no failed create may cost a block.
        Assert.Throws<FlexKvException>(() => CreateWithFailingRemote(cfg));
        Assert.Throws<FlexKvException>(() => CreateWithFailingRemote(Config(256 * 4096.0 / (1L << 30), fx.Dirs)));
        Assert.Throws<FlexKvException>(() => CreateWithFailingRemote(Config(2 * 4096.0 / (1L << 30), fx.Dirs)));
        Assert.Throws<FlexKvException>(() => CreateWithFailingRemote(cfg + ",\"model_name\":\"other\""));
        Assert.Equal(sizes, files.Select(f => new FileInfo(f).Length).ToArray());
        using var h2 = fx.Open();
        Assert.Equal(3, h2.Engine.Stats().SsdRestoredBlocks);
        Assert.Equal(3 * Bs, h2.Engine.GetNumNewMatchedTokens("b", tokens, tokens.Length, 0));
        int[] dst = EngineHarness.Blocks(30, 3);
        h2.Load("b", dst, 3 * Bs);
        Assert.Empty(h2.FailedBlocks);
        for (int i = 0; i < 3; i++) Assert.Equal(h2.Device.Pattern(9 + src[i]), h2.Device.Read(dst[i]));
    }

    // The SSD tier opens before the remote store; a store that refuses makes create fail after it.
    private static void CreateWithFailingRemote(string ssdConfig)
    {
        // Same geometry as EngineHarness (so the same cache fingerprint as SsdEngineFixture's engines).
        string json = "{\"num_cpu_blocks\":8,\"block_bytes\":256,\"tokens_per_block\":4,\"use_hugepage_cpu_buffer\":false," +
                      $"\"remote_url\":\"redis://fake:1\"{ssdConfig}}}";
        KvEngine.Create(Encoding.UTF8.GetBytes(json),
            (_, _) => throw new FlexKvException(FlexKvStatus.InvalidConfig, "configuration key 'redis_password': refused")).Dispose();
    }
}
