using FlexKv.Core.Tests.Engine;
using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Tiers.Ssd;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>Temporary SSD directories and engines with a small CPU tier in front of them.</summary>
internal sealed class SsdEngineFixture : IDisposable
{
    public SsdEngineFixture(int dirs = 2)
    {
        Root = Directory.CreateTempSubdirectory("flexkv-ssd-test-").FullName;
        Dirs = Enumerable.Range(0, dirs).Select(i => Path.Combine(Root, $"d{i}")).ToArray();
    }

    public string Root { get; }

    public string[] Dirs { get; }

    public FlakyBlockDevice? Flaky { get; private set; }

    /// <summary>An engine with <paramref name="cpuBlocks"/> CPU and <paramref name="ssdBlocks"/> SSD blocks (4 KiB extents).</summary>
    public EngineHarness Open(int cpuBlocks = 8, int ssdBlocks = 64, bool flaky = false, string extra = "")
    {
        double gb = ssdBlocks * 4096.0 / (1L << 30);
        string cfg = $",\"ssd_cache_gb\":{gb.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}," +
                     $"\"ssd_cache_dir\":\"{string.Join(';', Dirs)}\"{extra}";
        Func<IBlockDevice, IBlockDevice>? wrap = flaky ? d => Flaky = new FlakyBlockDevice(d) : null;
        return new EngineHarness(cpuBlocks: cpuBlocks, deviceBlocks: 64, extraConfig: cfg, wrapSsd: wrap);
    }

    /// <summary>Waits until the engine wrote <paramref name="blocks"/> blocks to SSD.</summary>
    public static void WaitSsdWritten(EngineHarness h, long blocks, int timeoutMs = 10_000)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (h.Engine.Stats().SsdBlocksWritten < blocks)
        {
            if (sw.ElapsedMilliseconds > timeoutMs) Assert.Fail($"only {h.Engine.Stats().SsdBlocksWritten} of {blocks} blocks reached SSD");
            Thread.Sleep(5);
        }
        // Let the completions be applied so the SSD copies are readable.
        h.Engine.Stats();
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
