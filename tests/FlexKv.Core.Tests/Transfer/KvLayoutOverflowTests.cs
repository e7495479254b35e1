using FlexKv.Core.Errors;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tests.Transfer;

/// <summary>Layouts whose sizes or addresses overflow 64 bits are refused before any copy runs.</summary>
public class KvLayoutOverflowTests
{
    private static KvLayerDesc Real(long span = 2048) => new()
    {
        Base = 0x10000, BlockStride = 2 * span, KvStride = span, SpanBytes = span, NumKv = 2,
    };

    [Fact]
    public void Create_SpansWhoseSumWrapsToTheBlockSize_AreRefused()
    {
        // 2 layers x num_kv 2 x 2^62 bytes wrap around to 0: with one real 4096-byte layer the
        // sum "matches" a 4096-byte block, and the first save would write far outside memory.
        var huge = new KvLayerDesc { Base = 0x10000, BlockStride = 1L << 62, KvStride = 1L << 62, SpanBytes = 1L << 62, NumKv = 2 };
        var ex = Assert.Throws<FlexKvException>(() => KvLayout.Create([huge, huge, Real()], 4, 4096));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
        Assert.Contains("larger than a whole block", ex.Message);
    }

    public static TheoryData<KvLayerDesc> WrappingAddresses => new()
    {
        Real() with { BlockStride = long.MaxValue / 2 },
        Real() with { Base = ulong.MaxValue - 4096 },
        Real() with { KvStride = long.MaxValue },
        Real() with { KvStride = long.MinValue },
        Real() with { KvStride = -0x20000 },
    };

    [Theory]
    [MemberData(nameof(WrappingAddresses))]
    public void Create_AddressesOutside64Bits_AreRefused(KvLayerDesc layer)
    {
        var ex = Assert.Throws<FlexKvException>(() => KvLayout.Create([layer], 1000, 4096));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
        Assert.Contains("register_kv_caches", ex.Message);
    }

    [Fact]
    public void Create_VBeforeK_IsAllowedWhenItStaysAboveZero()
    {
        KvLayout layout = KvLayout.Create([Real() with { Base = 0x100000, KvStride = -2048 }], 10, 4096);
        Assert.Equal(4096, layout.BlockBytes);
    }
}
