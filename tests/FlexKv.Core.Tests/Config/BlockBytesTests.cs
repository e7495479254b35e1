using FlexKv.Core.Config;

namespace FlexKv.Core.Tests.Config;

public class BlockBytesTests
{
    private static long Resolve(string modelFields) =>
        EngineOptionsValidator.ResolveBlockBytes(EngineOptionsJson.Parse("{\"num_cpu_blocks\":8," + modelFields + "}"));

    [Theory]
    // layers * tokens_per_block * kv_heads * head_size * dtype bytes * (K and V)
    [InlineData("float16", 2 * 16 * 4 * 64 * 2 * 2)]
    [InlineData("bfloat16", 2 * 16 * 4 * 64 * 2 * 2)]
    [InlineData("float32", 2 * 16 * 4 * 64 * 4 * 2)]
    [InlineData("fp8", 2 * 16 * 4 * 64 * 1 * 2)]
    [InlineData("FP16", 2 * 16 * 4 * 64 * 2 * 2)]
    public void ResolveBlockBytes_ModelFields_MultipliesLayersTokensHeadsAndDtype(string dtype, long expected)
    {
        Assert.Equal(expected, Resolve($"\"num_layers\":2,\"num_kv_heads\":4,\"head_size\":64,\"dtype\":\"{dtype}\",\"tokens_per_block\":16"));
    }

    [Fact]
    public void ResolveBlockBytes_Mla_HoldsOneVectorPerToken()
    {
        long mha = Resolve("\"num_layers\":3,\"num_kv_heads\":1,\"head_size\":576,\"tokens_per_block\":64");
        long mla = Resolve("\"num_layers\":3,\"num_kv_heads\":1,\"head_size\":576,\"tokens_per_block\":64,\"use_mla\":true");

        Assert.Equal(3L * 64 * 576 * 2, mla);
        Assert.Equal(2 * mla, mha);
    }

    [Fact]
    public void ResolveBlockBytes_ExplicitBlockBytes_WinsOverModelFields()
    {
        Assert.Equal(4096, Resolve("\"block_bytes\":4096,\"num_layers\":2,\"num_kv_heads\":4,\"head_size\":64"));
    }
}
