using System.Runtime.InteropServices;
using FlexKv.Core.Engine;
using FlexKv.Core.Events;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>KV events for vLLM (kv_events_config): turning them on, vLLM's block hashes in, the events out. Marshalling only.</summary>
internal static unsafe class EventExports
{
    [UnmanagedCallersOnly(EntryPoint = "flexkv_kv_events_enable")]
    public static int Enable(ulong engine, int capacity)
    {
        try
        {
            HandleTable.Get<KvEngine>(engine).Events.Enable(capacity);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_set_block_hashes")]
    public static int SetBlockHashes(ulong engine, byte* requestId, nuint requestIdLength, int firstBlock, byte* hashes,
        nuint hashBytes, nuint count)
    {
        try
        {
            KvEngine e = HandleTable.Get<KvEngine>(engine);
            Span<char> chars = stackalloc char[Args.MaxIdBytes];
            var id = Args.Decode(Args.Id(requestId, requestIdLength), chars);
            if (hashBytes > KvEvent.MaxHashBytes)
                return LastError.Set(Core.Errors.FlexKvStatus.InvalidArgument, $"a block hash is 1 to {KvEvent.MaxHashBytes} bytes, got {hashBytes}");
            if (count > int.MaxValue / KvEvent.MaxHashBytes)
                return LastError.Set(Core.Errors.FlexKvStatus.InvalidArgument, $"{count} block hashes are too many");
            e.Events.SetBlockHashes(id, firstBlock, Args.Span(hashes, hashBytes * count, "hashes"), (int)hashBytes);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_kv_events_take")]
    public static int Take(ulong engine, KvEvent* events, nuint capacity, nuint* count)
    {
        try
        {
            Args.NotNull(count, "count");
            *count = 0;
            *count = (nuint)HandleTable.Get<KvEngine>(engine).Events.Take(Args.Out(events, capacity, "events"));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }
}
