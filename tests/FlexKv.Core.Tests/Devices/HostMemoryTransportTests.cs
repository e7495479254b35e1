using System.Runtime.InteropServices;
using FlexKv.Core.Tests.Fakes;
using FlexKv.Core.Transfer;
using FlexKv.Core.Devices;

namespace FlexKv.Core.Tests.Transfer;

public unsafe class HostMemoryTransportTests : IDisposable
{
    private readonly DeviceKvCache _device = new(numBlocks: 8, spanBytes: 48);
    private readonly byte* _host;
    private readonly HostMemoryTransport _transport;

    public HostMemoryTransportTests()
    {
        _host = (byte*)NativeMemory.AllocZeroed((nuint)(4 * _device.BlockBytes));
        _transport = new HostMemoryTransport(KvLayout.Create(_device.Layers, _device.NumBlocks, _device.BlockBytes));
    }

    private Span<byte> Slot(int slot) => new(_host + slot * _device.BlockBytes, (int)_device.BlockBytes);

    [Fact]
    public void Copy_DeviceToHost_WritesEachBlockBlockMajorIntoItsSlot()
    {
        for (int b = 0; b < 8; b++) _device.Fill(b, b);
        var failed = new byte[3];

        int failures = _transport.Copy(TransferDirection.DeviceToHost, [5, 1, 6], [2, 0, 3], _host, _device.BlockBytes, failed);

        Assert.Equal(0, failures);
        Assert.Equal(_device.Pattern(1), Slot(0).ToArray());
        Assert.Equal(_device.Pattern(5), Slot(2).ToArray());
        Assert.Equal(_device.Pattern(6), Slot(3).ToArray());
        Assert.True(Slot(1).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(new byte[3], failed);
    }

    [Fact]
    public void Copy_HostToDevice_RestoresTheBlocksAndTouchesNoOther()
    {
        _device.Pattern(20).CopyTo(Slot(0));
        _device.Pattern(21).CopyTo(Slot(1));
        var failed = new byte[2];

        _transport.Copy(TransferDirection.HostToDevice, [7, 0], [0, 1], _host, _device.BlockBytes, failed);

        Assert.Equal(_device.Pattern(20), _device.Read(7));
        Assert.Equal(_device.Pattern(21), _device.Read(0));
        for (int b = 1; b < 7; b++) Assert.True(_device.IsZero(b));
    }

    [Fact]
    public void Copy_BlockOutsideTheCache_FailsOnlyThatBlock()
    {
        _device.Fill(2, 9);
        var failed = new byte[3];

        int failures = _transport.Copy(TransferDirection.DeviceToHost, [8, 2, -1], [0, 1, 2], _host, _device.BlockBytes, failed);

        Assert.Equal(2, failures);
        Assert.Equal(new byte[] { 1, 0, 1 }, failed);
        Assert.Equal(_device.Pattern(9), Slot(1).ToArray());
    }

    public void Dispose()
    {
        NativeMemory.Free(_host);
        _device.Dispose();
    }
}
