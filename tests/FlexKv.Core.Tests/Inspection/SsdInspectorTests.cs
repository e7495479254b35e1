using System.Security.Cryptography;
using System.Text.Json;
using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Inspection;
using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Tiers.Ssd;

namespace FlexKv.Core.Tests.Inspection;

public class SsdInspectorTests
{
    private const int Bs = EngineHarness.Bs;

    // Two directories, 3 sequences of 5 blocks written through to SSD by a real engine.
    private static SsdEngineFixture Filled()
    {
        var fx = new SsdEngineFixture(dirs: 2);
        using var h = fx.Open(cpuBlocks: 32, ssdBlocks: 64);
        for (int s = 0; s < 3; s++)
        {
            int[] blocks = EngineHarness.Blocks(s * 5, 5);
            h.FillDevice(blocks, 7);
            h.Save($"s{s}", EngineHarness.Tokens(5 * Bs + 1, seed: 10 + s), blocks);
        }
        SsdEngineFixture.WaitSsdWritten(h, 15);
        return fx;
    }

    private static Dictionary<string, (string, DateTime)> Snapshot(SsdEngineFixture fx) =>
        fx.Dirs.SelectMany(Directory.EnumerateFiles).ToDictionary(f => f,
            f => (Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))), File.GetLastWriteTimeUtc(f)));

    private static JsonElement Summary(SsdInspector i)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms)) SsdInspectionJson.Write(w, i);
        return JsonDocument.Parse(ms.ToArray()).RootElement.Clone();
    }

    // The configuration SsdEngineFixture.Open uses (EngineHarness's blocks: 2 layers x K, V x 64 bytes).
    private static EngineOptions Options(SsdEngineFixture fx, string model = "")
    {
        string gb = (64 * 4096.0 / (1L << 30)).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return EngineOptionsJson.Parse($"{{\"num_cpu_blocks\":32,\"block_bytes\":256,\"tokens_per_block\":{Bs}," +
            $"\"ssd_cache_gb\":{gb},\"ssd_cache_dir\":\"{string.Join(';', fx.Dirs)}\",\"model_name\":\"{model}\"}}");
    }

    [Fact]
    public void Summary_CountsWhatTheEngineWrote_AndChangesNothing()
    {
        using var fx = Filled();
        var before = Snapshot(fx);
        using (var i = new SsdInspector(string.Join(';', fx.Dirs), Options(fx)))
        {
            JsonElement s = Summary(i);
            Assert.True(s.GetProperty("readable").GetBoolean());
            Assert.Equal(15, s.GetProperty("blocks").GetInt32());
            Assert.Equal(3, s.GetProperty("root_blocks").GetInt32());
            Assert.Equal(15, s.GetProperty("restorable_blocks").GetInt32());
            Assert.Equal(64, s.GetProperty("slots").GetInt32());
            Assert.Equal(64 - 15, s.GetProperty("free_slots").GetInt32());
            Assert.True(s.GetProperty("config").GetProperty("reused").GetBoolean());
            JsonElement d1 = s.GetProperty("directories")[1];
            Assert.Equal(d1.GetProperty("data_expected_bytes").GetInt64(), d1.GetProperty("data_bytes").GetInt64());
            Assert.Equal(0, i.Verify(0, 64, new int[4], out int checkedBlocks));
            Assert.Equal(15, checkedBlocks);
        }
        Assert.Equal(before, Snapshot(fx));
    }

    [Fact]
    public void Verify_FindsTheCorruptedSlot_InEitherDirectory_AndRepairDropsIt()
    {
        using var fx = Filled();
        // Slot 3 lives in directory 3 % 2 = 1, at extent 3 / 2 = 1.
        using (var f = new FileStream(Path.Combine(fx.Dirs[1], "flexkv-blocks.dat"), FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 4096 + 10;
            int b = f.ReadByte();
            f.Position = 4096 + 10;
            f.WriteByte((byte)(b ^ 0x5A));
        }
        string spec = string.Join(';', fx.Dirs);
        using (var i = new SsdInspector(spec))
        {
            var bad = new int[4];
            Assert.Equal(1, i.Verify(0, 64, bad, out _));
            Assert.Equal(3, bad[0]);
            Assert.Equal(1, i.Repair([3]));
        }
        using (var i = new SsdInspector(spec))
        {
            JsonElement s = Summary(i);
            Assert.Equal(14, s.GetProperty("blocks").GetInt32());
            Assert.True(s.GetProperty("restorable_blocks").GetInt32() < 14); // the chain below slot 3 is cut
            Assert.Equal(0, i.Verify(0, 64, new int[4], out _));
        }
    }

    [Fact]
    public void AnotherConfiguration_IsToldWhyTheCacheWouldBeDiscarded()
    {
        using var fx = Filled();
        using var i = new SsdInspector(string.Join(';', fx.Dirs), Options(fx, model: "other-model"));
        Assert.Contains("fingerprint differs", i.ConfigDiscardReason);
        Assert.Equal(15, Summary(i).GetProperty("blocks").GetInt32()); // still listed with its own geometry
    }

    [Fact]
    public void RunningEngine_IsReadWhileItWrites_ButNeverRepaired()
    {
        using var fx = Filled();
        using var h = fx.Open(cpuBlocks: 32, ssdBlocks: 64);
        using var i = new SsdInspector(string.Join(';', fx.Dirs));
        Assert.Null(i.Problem);
        Assert.Equal(15, Summary(i).GetProperty("blocks").GetInt32());
        var e = Assert.Throws<FlexKvException>(() => i.Repair([0]));
        Assert.Contains("in use by another FlexKv engine", e.Message);
    }

    [Fact]
    public void DirectoryWithoutACache_HasAProblemAndNothingToVerify()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        Directory.CreateDirectory(fx.Dirs[0]);
        using var i = new SsdInspector(fx.Dirs[0]);
        Assert.Contains("holds no FlexKv cache", i.Problem);
        Assert.Equal(FlexKvStatus.InvalidState, Assert.Throws<FlexKvException>(() => i.Verify(0, 1, [], out _)).Status);
        Assert.Empty(Directory.EnumerateFileSystemEntries(fx.Dirs[0]));
    }
}
