using FlexKv.Core.Errors;
using FlexKv.Core.Transfer;

namespace FlexKv.Core.Tests.Transfer;

public class KvLayoutTests
{
    private static KvLayerDesc Layer(long span = 64, int numKv = 2) => new()
    {
        Base = 0x10000, BlockStride = 2 * span, KvStride = span, SpanBytes = span, NumKv = numKv,
    };

    [Fact]
    public void Create_ValidLayers_SumsTheirSpansIntoBlockBytes()
    {
        KvLayout layout = KvLayout.Create([Layer(64), Layer(32), Layer(16, numKv: 1)], 10, 2 * 64 + 2 * 32 + 16);

        Assert.Equal(208, layout.BlockBytes);
        Assert.Equal(10, layout.NumDeviceBlocks);
        Assert.Equal(3, layout.Layers.Length);
    }

    public static TheoryData<string, KvLayerDesc> BadLayers => new()
    {
        { "base", Layer() with { Base = 0 } },
        { "num_kv", Layer() with { NumKv = 3 } },
        { "span_bytes", Layer() with { SpanBytes = 0, BlockStride = 128 } },
        { "block_stride", Layer() with { BlockStride = 32 } },
        { "overlap", Layer() with { KvStride = 16 } },
        { "reserved", Layer() with { Reserved = 1 } },
    };

    [Theory]
    [MemberData(nameof(BadLayers))]
    public void Create_BadLayer_ThrowsInvalidArgumentNamingTheProblem(string what, KvLayerDesc layer)
    {
        var ex = Assert.Throws<FlexKvException>(() => KvLayout.Create([layer], 10, 128));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
        Assert.Contains("register_kv_caches", ex.Message);
        Assert.Contains(what, ex.Message);
    }

    [Fact]
    public void Create_NegativeKvStrideWithoutOverlap_IsAccepted()
    {
        // V span stored before K span: the stride is negative but the spans do not overlap.
        KvLayout layout = KvLayout.Create([Layer() with { KvStride = -640 }], 10, 128);

        Assert.Equal(128, layout.BlockBytes);
    }

    [Theory]
    [InlineData(0, 10, 128)]     // no layers
    [InlineData(1, 0, 128)]      // no device blocks
    [InlineData(1, 10, 256)]     // wrong total
    public void Create_InconsistentRegistration_ThrowsInvalidArgument(int layers, int blocks, long expected)
    {
        KvLayerDesc[] l = Enumerable.Repeat(Layer(), layers).ToArray();

        var ex = Assert.Throws<FlexKvException>(() => KvLayout.Create(l, blocks, expected));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
    }

    [Fact]
    public void CheckBlockIds_OutsideTheCache_ThrowsInvalidArgument()
    {
        KvLayout layout = KvLayout.Create([Layer()], 10, 128);

        layout.CheckBlockIds([0, 9]);
        Assert.Equal(FlexKvStatus.InvalidArgument, Assert.Throws<FlexKvException>(() => layout.CheckBlockIds([3, 10])).Status);
        Assert.Equal(FlexKvStatus.InvalidArgument, Assert.Throws<FlexKvException>(() => layout.CheckBlockIds([-1])).Status);
    }
}
