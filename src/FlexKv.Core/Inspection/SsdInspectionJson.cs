using System.Globalization;
using System.Text.Json;
using FlexKv.Core.Config;
using FlexKv.Core.Hashing;
using FlexKv.Core.Tiers.Ssd;

namespace FlexKv.Core.Inspection;

/// <summary>An <see cref="SsdInspector"/>'s findings as one JSON object (what <c>flexkv inspect</c> prints).</summary>
internal static class SsdInspectionJson
{
    private const int HeaderBytes = 64, RecordBytes = 64; // the journal's record size, to count records

    /// <summary>Writes the summary: files, journal state, geometry, blocks, and the comparison with a configuration.</summary>
    public static void Write(Utf8JsonWriter w, SsdInspector i)
    {
        w.WriteStartObject();
        WriteFiles(w, i);
        w.WriteBoolean("readable", i.Problem is null);
        if (i.Problem is null) w.WriteNull("problem");
        else w.WriteString("problem", i.Problem);
        if (i.Header is { } h)
        {
            w.WriteString("fingerprint", h.Fingerprint.ToString("x32", CultureInfo.InvariantCulture));
            w.WriteNumber("block_bytes", h.BlockBytes);
            w.WriteNumber("slots", h.Slots);
            w.WriteNumber("slot_bytes", SsdInspector.ExtentOf(h.BlockBytes));
            if (i.Label is { } label)
            {
                w.WritePropertyName("fingerprint_fields");
                label.WriteTo(w);
            }
            else w.WriteNull("fingerprint_fields");
            if (i.LabelProblem is { } why) w.WriteString("fingerprint_fields_problem", why);
        }
        if (i.Problem is null && i.Header is { } g) WriteBlocks(w, i, g);
        if (i.Options is { } o) WriteConfig(w, i, o);
        w.WriteEndObject();
    }

    private static void WriteFiles(Utf8JsonWriter w, SsdInspector i)
    {
        w.WriteStartArray("directories");
        int n = i.Paths.Length;
        for (int d = 0; d < n; d++)
        {
            var data = new FileInfo(Path.Combine(i.Paths[d], "flexkv-blocks.dat"));
            w.WriteStartObject();
            w.WriteString("path", i.Paths[d]);
            w.WriteBoolean("data_file", data.Exists);
            if (data.Exists)
            {
                w.WriteNumber("data_bytes", data.Length);
                w.WriteString("data_modified", data.LastWriteTimeUtc.ToString("o", CultureInfo.InvariantCulture));
            }
            // Slot s lives in directory s % n: this file must hold that many slots.
            if (i.Header is { } h) w.WriteNumber("data_expected_bytes", (long)((h.Slots - d + n - 1) / n) * SsdInspector.ExtentOf(h.BlockBytes));
            w.WriteBoolean("lock_file", File.Exists(Path.Combine(i.Paths[d], "flexkv.lock")));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        var journal = new FileInfo(i.JournalPath);
        w.WriteStartObject("journal");
        w.WriteString("path", i.JournalPath);
        w.WriteBoolean("exists", journal.Exists);
        if (journal.Exists)
        {
            w.WriteNumber("bytes", i.JournalBytes);
            w.WriteNumber("records", Math.Max(0, (i.JournalBytes - HeaderBytes) / RecordBytes));
            w.WriteNumber("torn_records", i.TornRecords);
            w.WriteString("modified", journal.LastWriteTimeUtc.ToString("o", CultureInfo.InvariantCulture));
        }
        w.WriteEndObject();
    }

    // Blocks an engine would restore: the first record of each key whose parents all are on SSD
    // (KvEngine.Restore keeps those, drops the rest).
    private static void WriteBlocks(Utf8JsonWriter w, SsdInspector i, SsdJournalHeader h)
    {
        var byKey = new Dictionary<UInt128, SsdRecord>();
        int blocks = 0, roots = 0;
        for (int s = 0; s < i.SlotCount; s++)
        {
            if (i.RecordAt(s) is not { } rec) continue;
            blocks++;
            if (!rec.HasParent) roots++;
            byKey.TryAdd(rec.Key, rec);
        }
        var reachable = new Dictionary<UInt128, bool>(byKey.Count);
        var chain = new Stack<UInt128>();
        foreach (SsdRecord rec in byKey.Values)
        {
            // Walk up to a block whose fate is known (or a root, or a missing parent), then settle the walk.
            UInt128 key = rec.Key;
            bool ok;
            while (true)
            {
                if (reachable.TryGetValue(key, out ok)) break;
                if (chain.Count > byKey.Count) { ok = false; break; } // a parent loop (forged journal)
                chain.Push(key);
                SsdRecord cur = byKey[key];
                if (!cur.HasParent) { ok = true; break; }
                if (!byKey.ContainsKey(cur.Parent)) { ok = false; break; }
                key = cur.Parent;
            }
            while (chain.Count > 0) reachable[chain.Pop()] = ok;
        }
        int restorable = reachable.Values.Count(v => v);
        w.WriteNumber("blocks", blocks);
        w.WriteNumber("root_blocks", roots);
        w.WriteNumber("restorable_blocks", restorable);
        w.WriteNumber("unreachable_blocks", blocks - restorable);
        w.WriteNumber("free_slots", i.SlotCount - blocks);
        w.WriteNumber("bytes", (long)blocks * h.BlockBytes);
    }

    private static void WriteConfig(Utf8JsonWriter w, SsdInspector i, EngineOptions o)
    {
        w.WriteStartObject("config");
        long bb = EngineOptionsValidator.ResolveBlockBytes(o);
        if (i.Header is { } h)
        {
            w.WriteBoolean("fingerprint_matches", h.Fingerprint == CacheFingerprint.From(o).Value);
            w.WriteBoolean("block_bytes_match", h.BlockBytes == bb);
        }
        w.WriteNumber("block_bytes", bb);
        w.WriteNumber("slots", o.SsdCacheGb > 0 ? SsdInspector.SlotsFor(o) : 0);
        w.WriteBoolean("reused", i.Problem is null && i.ConfigDiscardReason is null);
        if (i.ConfigDiscardReason is null) w.WriteNull("discard_reason");
        else w.WriteString("discard_reason", i.ConfigDiscardReason);
        w.WriteEndObject();
    }
}
