using FlexKv.Core.Engine;
using FlexKv.Core.Tests.Engine;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>A later start may ask for another ssd_cache_gb: the files follow it and the blocks that still fit stay.</summary>
public class SsdResizeTests
{
    private const int Bs = EngineHarness.Bs;

    [Fact]
    public void Reopen_Smaller_ShrinksTheFiles_KeepsTheBlocksThatFit_AndGrowingAgainKeepsThem()
    {
        using var fx = new SsdEngineFixture(dirs: 2);
        long[][] tokens = Enumerable.Range(0, 8).Select(r => EngineHarness.Tokens(4 * Bs + 1, seed: 100 + r)).ToArray();
        using (var h = fx.Open(cpuBlocks: 64))
        {
            // Request r's blocks reach SSD slots 4r..4r+3 (written in order, slots handed out in order).
            for (int r = 0; r < 8; r++)
            {
                h.FillDevice(EngineHarness.Blocks(4 * r, 4), 1000 * r);
                h.Save($"r{r}", tokens[r], EngineHarness.Blocks(4 * r, 4));
                SsdEngineFixture.WaitSsdWritten(h, 4 * (r + 1));
            }
        }
        string[] files = fx.Dirs.Select(d => Path.Combine(d, "flexkv-blocks.dat")).ToArray();
        Assert.All(files, f => Assert.Equal(32 * 4096, new FileInfo(f).Length));

        using (var h = fx.Open(cpuBlocks: 64, ssdBlocks: 16))
        {
            EngineStats s = h.Engine.Stats();
            Assert.Equal(16, s.SsdRestoredBlocks);
            Assert.Contains(s.Warnings, w => w.Contains("16 SSD blocks") && w.Contains("ssd_cache_gb"));
            Assert.All(files, f => Assert.Equal(8 * 4096, new FileInfo(f).Length)); // slots 0..15 striped over two files
            AssertServed(h, tokens, 4);
        }

        using var h2 = fx.Open(cpuBlocks: 64, ssdBlocks: 64);
        Assert.Equal(16, h2.Engine.Stats().SsdRestoredBlocks);
        Assert.All(files, f => Assert.Equal(32 * 4096, new FileInfo(f).Length));
        AssertServed(h2, tokens, 4);
    }

    // Requests 0..kept-1 are served byte for byte from SSD; the others are gone (not served wrong).
    private static void AssertServed(EngineHarness h, long[][] tokens, int kept)
    {
        for (int r = 0; r < tokens.Length; r++)
        {
            int n = h.Engine.GetNumNewMatchedTokens($"q{r}", tokens[r], tokens[r].Length, 0);
            if (r >= kept)
            {
                Assert.Equal(0, n);
                h.Engine.RequestFinished($"q{r}", [], tokens[r].Length, [], save: false);
                continue;
            }
            Assert.Equal(4 * Bs, n);
            int[] dst = EngineHarness.Blocks(40, 4);
            h.Load($"q{r}", dst, n);
            Assert.Empty(h.FailedBlocks);
            for (int i = 0; i < 4; i++) Assert.Equal(h.Device.Pattern(1000 * r + 4 * r + i), h.Device.Read(dst[i]));
            h.Engine.RequestFinished($"q{r}", [], tokens[r].Length, dst, save: false);
        }
    }
}
