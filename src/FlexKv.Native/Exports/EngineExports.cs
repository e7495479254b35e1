using System.Runtime.InteropServices;
using FlexKv.Core.Engine;
using FlexKv.Core.Transfer;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>Engine lifetime, registration, stats and reset. Marshalling only.</summary>
internal static unsafe class EngineExports
{
    [UnmanagedCallersOnly(EntryPoint = "flexkv_engine_create")]
    public static int Create(byte* configJson, nuint length, ulong* engine)
    {
        try
        {
            Args.NotNull(engine, "engine");
            *engine = 0;
            Args.NotNull(configJson, "config_json");
            var json = Args.Span(configJson, length, "config_json");
            *engine = HandleTable.Add(KvEngine.Create(json, Redis.RedisRemoteStore.Create));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_engine_destroy")]
    public static int Destroy(ulong engine)
    {
        try
        {
            if (engine == 0) return 0;
            HandleTable.Remove<KvEngine>(engine)?.Shutdown();
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_engine_shutdown")]
    public static int Shutdown(ulong engine)
    {
        try
        {
            HandleTable.Get<KvEngine>(engine).Shutdown();
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_register_kv_caches")]
    public static int RegisterKvCaches(ulong engine, KvLayerDesc* layers, nuint numLayers, int numDeviceBlocks)
    {
        try
        {
            HandleTable.Get<KvEngine>(engine).Devices.RegisterKvCaches(Args.Span(layers, numLayers, "layers"), numDeviceBlocks);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_register_cuda_kv_caches")]
    public static int RegisterCudaKvCaches(ulong engine, KvLayerDesc* layers, nuint numLayers, int numDeviceBlocks, int device)
    {
        try
        {
            HandleTable.Get<KvEngine>(engine).Devices.RegisterCudaKvCaches(Args.Span(layers, numLayers, "layers"), numDeviceBlocks, device);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_register_process_kv_caches")]
    public static int RegisterProcessKvCaches(ulong engine, int pid, KvLayerDesc* layers, nuint numLayers, int numDeviceBlocks)
    {
        try
        {
            HandleTable.Get<KvEngine>(engine).Devices.RegisterProcessKvCaches(pid, Args.Span(layers, numLayers, "layers"), numDeviceBlocks);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_reset")]
    public static int Reset(ulong engine)
    {
        try
        {
            HandleTable.Get<KvEngine>(engine).Reset();
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_stats")]
    public static int Stats(ulong engine, byte* buffer, nuint capacity, nuint* needed)
    {
        try
        {
            return Args.WriteText(HandleTable.Get<KvEngine>(engine).StatsJson(), buffer, capacity, needed);
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_wait")]
    public static int Wait(ulong engine, int timeoutMs, int* ready)
    {
        try
        {
            Args.NotNull(ready, "ready");
            *ready = HandleTable.Get<KvEngine>(engine).WaitForCompletion(Math.Max(0, timeoutMs)) ? 1 : 0;
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }
}
