using System.Runtime.InteropServices;
using System.Text.Json;
using FlexKv.Core.Engine;
using FlexKv.Core.Metrics;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>The metrics snapshot (an int64 array read every step) and its names. Marshalling only.</summary>
internal static unsafe class MetricsExports
{
    private static readonly Lazy<byte[]> s_namesJson = new(NamesJson);

    [UnmanagedCallersOnly(EntryPoint = "flexkv_metrics_read")]
    public static int Read(ulong engine, long* values, nuint capacity, nuint* count)
    {
        try
        {
            Args.NotNull(count, "count");
            var dst = Args.Out(values, capacity, "values");
            *count = (nuint)HandleTable.Get<KvEngine>(engine).ReadMetrics(dst);
            return 0;
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_metrics_names")]
    public static int Names(byte* buffer, nuint capacity, nuint* needed)
    {
        try
        {
            return Args.WriteText(s_namesJson.Value, buffer, capacity, needed);
        }
        catch (Exception ex) { return LastError.Set(ex); }
    }

    private static byte[] NamesJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartArray();
            for (int i = 0; i < StatsMetrics.Count; i++)
            {
                MetricInfo m = StatsMetrics.Info(i);
                w.WriteStartObject();
                w.WriteString("name", m.Name);
                w.WriteString("kind", m.Kind switch { MetricKind.Counter => "counter", MetricKind.Gauge => "gauge", _ => "histogram" });
                w.WriteString("help", m.Help);
                if (!m.LabelSpan.IsEmpty)
                {
                    w.WriteStartObject("labels");
                    foreach (MetricLabel l in m.LabelSpan) w.WriteString(l.Key, l.Value);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return ms.ToArray();
    }
}
