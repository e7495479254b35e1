using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using FlexKv.Core.Errors;
using FlexKv.Core.Transfer;
using FlexKv.Native.Exports;
using FlexKv.Core.Devices;

namespace FlexKv.Core.Tests.Native;

/// <summary>include/flexkv.h is the single source of truth of the C ABI: it must match the exports.</summary>
public partial class HeaderTests
{
    private static readonly string s_header = File.ReadAllText(FindHeader());

    private static string FindHeader()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "src", "FlexKv.Native", "include", "flexkv.h");
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException("flexkv.h not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^int\s+(flexkv_\w+)\s*\(", RegexOptions.Multiline)]
    private static partial Regex Declaration();

    [GeneratedRegex(@"#define\s+FLEXKV_(OK|ERR_\w+)\s+(-?\d+)")]
    private static partial Regex StatusDefine();

    [Fact]
    public void Header_DeclaresExactlyTheExportedFunctions()
    {
        var declared = Declaration().Matches(s_header).Select(m => m.Groups[1].Value).Order().ToArray();
        var exported = typeof(EngineExports).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Select(m => m.GetCustomAttribute<UnmanagedCallersOnlyAttribute>()?.EntryPoint)
            .OfType<string>().Order().ToArray();

        Assert.NotEmpty(exported);
        Assert.Equal(exported, declared);
    }

    [Fact]
    public void Header_StatusCodes_MatchFlexKvStatus()
    {
        var defines = StatusDefine().Matches(s_header).ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));

        Assert.Equal(Enum.GetValues<FlexKvStatus>().Length, defines.Count);
        Assert.Equal(0, defines["OK"]);
        Assert.Equal((int)FlexKvStatus.InvalidArgument, defines["ERR_INVALID_ARGUMENT"]);
        Assert.Equal((int)FlexKvStatus.InvalidHandle, defines["ERR_INVALID_HANDLE"]);
        Assert.Equal((int)FlexKvStatus.InvalidConfig, defines["ERR_INVALID_CONFIG"]);
        Assert.Equal((int)FlexKvStatus.BufferTooSmall, defines["ERR_BUFFER_TOO_SMALL"]);
        Assert.Equal((int)FlexKvStatus.UnknownRequest, defines["ERR_UNKNOWN_REQUEST"]);
        Assert.Equal((int)FlexKvStatus.InvalidState, defines["ERR_INVALID_STATE"]);
        Assert.Equal((int)FlexKvStatus.OutOfMemory, defines["ERR_OUT_OF_MEMORY"]);
        Assert.Equal((int)FlexKvStatus.NotRegistered, defines["ERR_NOT_REGISTERED"]);
        Assert.Equal((int)FlexKvStatus.ShutDown, defines["ERR_SHUT_DOWN"]);
        Assert.Equal((int)FlexKvStatus.IoError, defines["ERR_IO"]);
        Assert.Equal((int)FlexKvStatus.NotSupported, defines["ERR_NOT_SUPPORTED"]);
        Assert.Equal((int)FlexKvStatus.Internal, defines["ERR_INTERNAL"]);
    }

    [Fact]
    public void Header_AbiVersionAndFinishedKinds_MatchTheCode()
    {
        Assert.Contains($"#define FLEXKV_ABI_VERSION {CommonExports.AbiVersion}", s_header);
        Assert.Matches($@"#define FLEXKV_FINISHED_RECVING {(int)Core.Engine.FinishedKind.Recving}\b", s_header);
        Assert.Matches($@"#define FLEXKV_FINISHED_SENDING {(int)Core.Engine.FinishedKind.Sending}\b", s_header);
    }

    [Fact]
    public void LayerStruct_HasTheCLayout()
    {
        // uint64 base, int64 block_stride, int64 kv_stride, int64 span_bytes, int32 num_kv, int32 reserved
        Assert.Equal(40, Marshal.SizeOf<KvLayerDesc>());
        Assert.Equal(24, (int)Marshal.OffsetOf<KvLayerDesc>(nameof(KvLayerDesc.SpanBytes)));
        Assert.Equal(32, (int)Marshal.OffsetOf<KvLayerDesc>(nameof(KvLayerDesc.NumKv)));
    }

    [Fact]
    public void KvEventStruct_KindsAndTiers_MatchTheCode()
    {
        // uint8 kind, medium, hash_len, parent_len, reserved[4]; uint8 hash[32], parent[32]
        Assert.Equal(72, Unsafe.SizeOf<Core.Events.KvEvent>());
        Assert.Equal(8, (int)Marshal.OffsetOf<Core.Events.KvEvent>(nameof(Core.Events.KvEvent.Hash)));
        Assert.Equal(40, (int)Marshal.OffsetOf<Core.Events.KvEvent>(nameof(Core.Events.KvEvent.Parent)));
        Assert.Contains("uint8_t hash[32];", s_header);
        Assert.Contains("uint8_t parent[32];", s_header);
        Assert.Matches($@"#define FLEXKV_MAX_HASH_BYTES {Core.Events.KvEvent.MaxHashBytes}\b", s_header);
        Assert.Matches($@"#define FLEXKV_KV_EVENT_STORED  {(int)Core.Events.KvEventKind.Stored}\b", s_header);
        Assert.Matches($@"#define FLEXKV_KV_EVENT_REMOVED {(int)Core.Events.KvEventKind.Removed}\b", s_header);
        Assert.Matches($@"#define FLEXKV_KV_EVENT_CLEARED {(int)Core.Events.KvEventKind.Cleared}\b", s_header);
        Assert.Matches($@"#define FLEXKV_TIER_CPU    {(int)Core.Metrics.MetricTier.Cpu}\b", s_header);
        Assert.Matches($@"#define FLEXKV_TIER_SSD    {(int)Core.Metrics.MetricTier.Ssd}\b", s_header);
        Assert.Matches($@"#define FLEXKV_TIER_REMOTE {(int)Core.Metrics.MetricTier.Remote}\b", s_header);
    }

    [Fact]
    public void CudaIpcStruct_HasTheCLayout()
    {
        // uint8 handle[64], uint64 offset, char pci_bus_id[32]
        Assert.Equal(104, Unsafe.SizeOf<Core.Devices.Cuda.CudaIpcDesc>());
        Assert.Equal(64, (int)Marshal.OffsetOf<Core.Devices.Cuda.CudaIpcDesc>(nameof(Core.Devices.Cuda.CudaIpcDesc.Offset)));
        Assert.Equal(72, (int)Marshal.OffsetOf<Core.Devices.Cuda.CudaIpcDesc>(nameof(Core.Devices.Cuda.CudaIpcDesc.PciBusId)));
        Assert.Contains("uint8_t handle[64];", s_header);
        Assert.Contains("char pci_bus_id[32];", s_header);
    }
}
