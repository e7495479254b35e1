using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Inspection;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>Read-only views for operators: what a configuration reserves, what an SSD cache holds. Marshalling only.</summary>
internal static unsafe class InspectExports
{
    [UnmanagedCallersOnly(EntryPoint = "flexkv_config_summary")]
    public static int ConfigSummary(byte* configJson, nuint configJsonLength, byte* buffer, nuint capacity, nuint* needed)
    {
        try
        {
            EngineOptions o = EngineOptionsJson.Parse(Args.Span(configJson, configJsonLength, "config_json"));
            return Args.WriteText(Json(w => ConfigSummaryJson.Write(w, o)), buffer, capacity, needed);
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_ssd_open")]
    public static int Open(byte* dirs, nuint dirsLength, byte* configJson, nuint configJsonLength, ulong* inspector)
    {
        try
        {
            Args.NotNull(inspector, "inspector");
            *inspector = 0;
            string spec = Encoding.UTF8.GetString(Args.Span(dirs, dirsLength, "dirs"));
            if (spec.Contains('\0')) throw new FlexKvException(FlexKvStatus.InvalidArgument, "dirs contains a NUL character");
            EngineOptions? o = configJsonLength == 0 ? null : EngineOptionsJson.Parse(Args.Span(configJson, configJsonLength, "config_json"));
            *inspector = HandleTable.Add(new SsdInspector(spec, o));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_ssd_summary")]
    public static int Summary(ulong inspector, byte* buffer, nuint capacity, nuint* needed)
    {
        try
        {
            SsdInspector i = HandleTable.Get<SsdInspector>(inspector);
            return Args.WriteText(Json(w => SsdInspectionJson.Write(w, i)), buffer, capacity, needed);
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_ssd_verify")]
    public static int Verify(ulong inspector, int firstSlot, int count, int* badSlots, nuint badCapacity, int* badCount, int* checkedBlocks)
    {
        try
        {
            Args.NotNull(badCount, "bad_count");
            Args.NotNull(checkedBlocks, "checked_blocks");
            Span<int> bad = Args.Out(badSlots, badCapacity, "bad_slots");
            *badCount = HandleTable.Get<SsdInspector>(inspector).Verify(firstSlot, count, bad, out int n);
            *checkedBlocks = n;
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_ssd_repair")]
    public static int Repair(ulong inspector, int* slots, nuint count, int* removed)
    {
        try
        {
            Args.NotNull(removed, "removed");
            *removed = HandleTable.Get<SsdInspector>(inspector).Repair(Args.Span(slots, count, "slots"));
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_ssd_close")]
    public static int Close(ulong inspector)
    {
        try
        {
            if (inspector != 0) HandleTable.Remove<SsdInspector>(inspector)?.Dispose();
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms)) write(w);
        return ms.ToArray();
    }
}
