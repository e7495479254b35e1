using System.Buffers.Binary;
using System.IO.Hashing;
using FlexKv.Core.Tests.Engine;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>
/// Someone who can write the SSD directory rewrites the journal so that keys point at other
/// blocks' slots, with each record's own hash recomputed: no wrong block may be served. With a
/// secret that holds even when the forger also recomputes the unkeyed seal of the bytes.
/// </summary>
public class SsdForgeryTests
{
    private const int Bs = EngineHarness.Bs;
    private const int Requests = 4, PerRequest = 4;
    private const string Secret = ",\"secret\":\"a-deployment-secret\"";

    [Fact]
    public void AForgedJournal_SlotsAndChecksSwapped_ServesNoWrongBlock()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        long[][] tokens = Fill(fx, "");
        Forge(fx, recomputeUnkeyedSeal: false);
        var (_, wrong, refused) = LoadAll(fx, tokens, "");
        Assert.Equal(0, wrong);
        Assert.Equal(Requests * PerRequest, refused);
    }

    [Fact]
    public void WithASecret_AForgedJournal_WithRecomputedUnkeyedSeals_ServesNoWrongBlock()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        long[][] tokens = Fill(fx, Secret);
        Forge(fx, recomputeUnkeyedSeal: true);
        var (_, wrong, refused) = LoadAll(fx, tokens, Secret);
        Assert.Equal(0, wrong);
        Assert.Equal(Requests * PerRequest, refused);
    }

    [Fact]
    public void WithoutASecret_TheSameForgeryIsServed_WhichIsWhatTheSecretIsFor()
    {
        // Without a secret the check is a public function of public data, so a forger who
        // recomputes it wins (docs/security.md); this pins down that the test above forges well.
        using var fx = new SsdEngineFixture(dirs: 1);
        long[][] tokens = Fill(fx, "");
        Forge(fx, recomputeUnkeyedSeal: true);
        var (served, wrong, _) = LoadAll(fx, tokens, "");
        Assert.Equal(Requests * PerRequest, served);
        Assert.Equal(Requests * PerRequest, wrong);
    }

    [Fact]
    public async Task AForgedParentCycle_DoesNotHangTheOpen_AndItsBlocksAreDropped()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        long[][] tokens = Fill(fx, "");
        string journal = Path.Combine(fx.Dirs[0], "flexkv-journal.bin");
        byte[] j = File.ReadAllBytes(journal);
        // Request 0's first block gets its last block as parent: 0 -> 3 -> 2 -> 1 -> 0.
        Span<byte> first = j.AsSpan(64, 64), last = j.AsSpan(64 + 64 * (PerRequest - 1), 64);
        BinaryPrimitives.WriteUInt32LittleEndian(first, 1); // a put with a parent
        last[8..24].CopyTo(first[24..40]);
        BinaryPrimitives.WriteUInt64LittleEndian(first[56..], XxHash3.HashToUInt64(first[..56]));
        File.WriteAllBytes(journal, j);
        var open = Task.Run(() =>
        {
            using var h = fx.Open(cpuBlocks: 32);
            return h.Engine.Stats().SsdRestoredBlocks;
        });
        Assert.Equal((Requests - 1) * PerRequest, await open.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    // Request r's blocks hold pattern 1000 r + device block; they reach SSD slots 4r..4r+3.
    private static long[][] Fill(SsdEngineFixture fx, string extra)
    {
        long[][] tokens = Enumerable.Range(0, Requests).Select(r => EngineHarness.Tokens(PerRequest * Bs + 1, seed: 300 + r)).ToArray();
        using var h = fx.Open(cpuBlocks: 32, extra: extra);
        for (int r = 0; r < Requests; r++)
        {
            int[] src = EngineHarness.Blocks(PerRequest * r, PerRequest);
            h.FillDevice(src, 1000 * r);
            h.Save($"r{r}", tokens[r], src);
            SsdEngineFixture.WaitSsdWritten(h, PerRequest * (r + 1));
        }
        return tokens;
    }

    // Record j takes the slot (and check) of record j + PerRequest and the other way round: each
    // key now names another request's bytes. The record hashes are recomputed, as a forger would.
    private static void Forge(SsdEngineFixture fx, bool recomputeUnkeyedSeal)
    {
        string journal = Path.Combine(fx.Dirs[0], "flexkv-journal.bin");
        byte[] j = File.ReadAllBytes(journal);
        int records = (j.Length - 64) / 64;
        Assert.Equal(Requests * PerRequest, records);
        UInt128 fingerprint = BinaryPrimitives.ReadUInt128LittleEndian(j.AsSpan(8));
        byte[] blocks = File.ReadAllBytes(Path.Combine(fx.Dirs[0], "flexkv-blocks.dat"));
        for (int a = 0; a < records; a++)
        {
            int b = a ^ PerRequest; // requests 0<->1, 2<->3
            if (b < a) continue;
            Span<byte> ra = j.AsSpan(64 + 64 * a, 64), rb = j.AsSpan(64 + 64 * b, 64);
            Swap(ra[4..8], rb[4..8]);
            Swap(ra[40..56], rb[40..56]);
        }
        for (int a = 0; a < records; a++)
        {
            Span<byte> r = j.AsSpan(64 + 64 * a, 64);
            if (recomputeUnkeyedSeal)
            {
                int slot = BinaryPrimitives.ReadInt32LittleEndian(r[4..]);
                UInt128 key = BinaryPrimitives.ReadUInt128LittleEndian(r[8..]);
                BinaryPrimitives.WriteUInt128LittleEndian(r[40..], UnkeyedSeal(fingerprint, key, blocks.AsSpan(slot * 4096, 256)));
            }
            BinaryPrimitives.WriteUInt64LittleEndian(r[56..], XxHash3.HashToUInt64(r[..56]));
        }
        File.WriteAllBytes(journal, j);
    }

    // Loads every request from SSD: blocks served, served with other bytes than saved, refused.
    private static (int Served, int Wrong, long Refused) LoadAll(SsdEngineFixture fx, long[][] tokens, string extra)
    {
        using var h = fx.Open(cpuBlocks: 32, extra: extra);
        Assert.Equal(Requests * PerRequest, h.Engine.Stats().SsdRestoredBlocks); // the forgery is well-formed
        int served = 0, wrong = 0;
        for (int r = 0; r < Requests; r++)
        {
            int n = h.Engine.GetNumNewMatchedTokens($"q{r}", tokens[r], tokens[r].Length, 0);
            int[] dst = EngineHarness.Blocks(40, n / Bs);
            h.FailedBlocks.Clear();
            if (n > 0) h.Load($"q{r}", dst, n);
            for (int i = 0; i < n / Bs; i++)
            {
                if (h.FailedBlocks.Contains(dst[i])) continue;
                served++;
                if (!h.Device.Read(dst[i]).SequenceEqual(h.Device.Pattern(1000 * r + PerRequest * r + i))) wrong++;
            }
            h.Engine.RequestFinished($"q{r}", [], tokens[r].Length, dst, save: false);
        }
        return (served, wrong, h.Engine.Stats().SsdChecksumFailures);
    }

    private static void Swap(Span<byte> a, Span<byte> b)
    {
        Span<byte> t = stackalloc byte[a.Length];
        a.CopyTo(t);
        b.CopyTo(a);
        t.CopyTo(b);
    }

    // The unkeyed seal as documented: XxHash128(fingerprint ‖ key ‖ bytes), all little-endian.
    private static UInt128 UnkeyedSeal(UInt128 fp, UInt128 key, ReadOnlySpan<byte> block)
    {
        var data = new byte[32 + block.Length];
        BinaryPrimitives.WriteUInt128LittleEndian(data, fp);
        BinaryPrimitives.WriteUInt128LittleEndian(data.AsSpan(16), key);
        block.CopyTo(data.AsSpan(32));
        return XxHash128.HashToUInt128(data);
    }
}
