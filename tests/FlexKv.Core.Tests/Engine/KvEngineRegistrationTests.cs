using System.Text.Json;
using FlexKv.Core.Engine;
using FlexKv.Core.Errors;
using FlexKv.Core.Transfer;
using static FlexKv.Core.Tests.Engine.EngineHarness;
using FlexKv.Core.Devices;

namespace FlexKv.Core.Tests.Engine;

public class KvEngineRegistrationTests
{
    [Fact]
    public void RegisterKvCaches_LayersDoNotAddUpToBlockBytes_ThrowsInvalidArgument()
    {
        using var h = new EngineHarness(register: false);
        KvLayerDesc[] oneLayer = [h.Device.Layers[0]];

        var ex = Assert.Throws<FlexKvException>(() => h.Engine.Devices.RegisterKvCaches(oneLayer, h.Device.NumBlocks));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
        Assert.False(h.Engine.IsRegistered);
    }

    [Fact]
    public void RegisterKvCaches_WhileATaskIsPlanned_ThrowsInvalidState()
    {
        using var h = new EngineHarness();
        Assert.True(h.Engine.RequestFinished("A", Tokens(9), 9, Blocks(0, 3), save: true));

        var ex = Assert.Throws<FlexKvException>(() => h.Engine.Devices.RegisterKvCaches(h.Device.Layers, h.Device.NumBlocks));
        Assert.Equal(FlexKvStatus.InvalidState, ex.Status);
    }

    [Fact]
    public void RegisterTransport_WrongBlockSize_ThrowsInvalidArgument()
    {
        using var h = new EngineHarness(register: false);
        using var other = new Fakes.DeviceKvCache(4, spanBytes: 32);
        var transport = new HostMemoryTransport(KvLayout.Create(other.Layers, 4, other.BlockBytes));

        var ex = Assert.Throws<FlexKvException>(() => h.Engine.Devices.RegisterTransport(transport));
        Assert.Equal(FlexKvStatus.InvalidArgument, ex.Status);
    }

    [Fact]
    public void StatsJson_Always_UsesTheSnakeCaseNames()
    {
        using var h = new EngineHarness(cpuBlocks: 16);

        using JsonDocument doc = JsonDocument.Parse(h.Engine.StatsJson());

        Assert.Equal(16, doc.RootElement.GetProperty("cpu_blocks_total").GetInt64());
        Assert.Equal(0, doc.RootElement.GetProperty("pinned_blocks").GetInt64());
        Assert.True(doc.RootElement.GetProperty("registered").GetBoolean());
    }

    [Fact]
    public void Create_CacheSmallerThanOneBlock_ThrowsInvalidConfig()
    {
        var ex = Assert.Throws<FlexKvException>(() =>
            KvEngine.Create("""{"cpu_cache_gb":0.000001,"block_bytes":1048576,"use_hugepage_cpu_buffer":false}"""u8));
        Assert.Equal(FlexKvStatus.InvalidConfig, ex.Status);
    }

    private sealed class DisposableTransport(KvLayout layout) : IDeviceTransport, IDisposable
    {
        private readonly HostMemoryTransport _inner = new(layout);

        public bool Disposed { get; private set; }

        public KvLayout Layout => layout;

        public unsafe int Copy(TransferDirection d, ReadOnlySpan<int> blocks, ReadOnlySpan<int> slots, byte* host, long stride, Span<byte> failed) =>
            _inner.Copy(d, blocks, slots, host, stride, failed);

        public void Dispose() => Disposed = true;
    }

    [Fact]
    public void RegisterTransport_ReplacedTransport_IsReleasedOnceNoCopyRuns()
    {
        using var h = new EngineHarness(register: false);
        var first = new DisposableTransport(KvLayout.Create(h.Device.Layers, h.Device.NumBlocks, h.Device.BlockBytes));
        var second = new DisposableTransport(KvLayout.Create(h.Device.Layers, h.Device.NumBlocks, h.Device.BlockBytes));
        h.Engine.Devices.RegisterTransport(first);

        h.Engine.Devices.RegisterTransport(second);
        h.Poll(); // any scheduler call may release it; no copy is running

        Assert.True(first.Disposed);
        Assert.False(second.Disposed);
        h.FillDevice(Blocks(0, 2), 5);
        h.Save("A", Tokens(2 * Bs + 1), Blocks(0, 2)); // the new registration serves
        h.Engine.Shutdown();
        Assert.True(second.Disposed);
    }
}
