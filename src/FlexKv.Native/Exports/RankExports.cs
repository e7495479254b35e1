using System.Runtime.InteropServices;
using FlexKv.Core.Devices.Cuda;
using FlexKv.Core.Engine;
using FlexKv.Core.Transfer;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>Tensor-parallel workers in other processes: their registration and CUDA IPC export. Marshalling only.</summary>
internal static unsafe class RankExports
{
    [UnmanagedCallersOnly(EntryPoint = "flexkv_register_rank_kv_caches")]
    public static int RegisterRankKvCaches(ulong engine, int rank, int worldSize, int pid, KvLayerDesc* layers, nuint numLayers,
        int numDeviceBlocks, int* complete)
    {
        try
        {
            Args.NotNull(complete, "complete");
            *complete = HandleTable.Get<KvEngine>(engine).Devices.RegisterRankKvCaches(rank, worldSize, pid,
                Args.Span(layers, numLayers, "layers"), numDeviceBlocks) ? 1 : 0;
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_register_rank_cuda_kv_caches")]
    public static int RegisterRankCudaKvCaches(ulong engine, int rank, int worldSize, CudaIpcDesc* handles, KvLayerDesc* layers,
        nuint numLayers, int numDeviceBlocks, int* complete)
    {
        try
        {
            Args.NotNull(complete, "complete");
            *complete = HandleTable.Get<KvEngine>(engine).Devices.RegisterRankCudaKvCaches(rank, worldSize,
                Args.Span(handles, numLayers, "handles"), Args.Span(layers, numLayers, "layers"), numDeviceBlocks) ? 1 : 0;
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_deregister_rank")]
    public static int DeregisterRank(ulong engine, int rank)
    {
        try
        {
            HandleTable.Get<KvEngine>(engine).Devices.DeregisterRank(rank);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_cuda_ipc_export")]
    public static int CudaIpcExportPointer(ulong devicePointer, CudaIpcDesc* desc)
    {
        try
        {
            Args.NotNull(desc, "desc");
            *desc = CudaIpcExport.Describe(devicePointer);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }
}
