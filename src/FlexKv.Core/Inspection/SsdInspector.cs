using System.Text.Json;
using FlexKv.Core.Config;
using FlexKv.Core.Errors;
using FlexKv.Core.Hashing;
using FlexKv.Core.Memory;
using FlexKv.Core.Tiers.Ssd;

namespace FlexKv.Core.Inspection;

/// <summary>
/// What an SSD cache directory holds, found without changing it: the journal is copied to a
/// private temporary directory and replayed there by <see cref="SsdJournal"/> itself (which
/// rewrites what it opens), so the cache's journal, data files and lock are only read; blocks
/// are read through a read-only view of the data files and checked against their seals with
/// <see cref="BlockSeal"/>, as the SSD tier's reader checks them. Only <see cref="Repair"/>
/// writes: it takes the directories the way an engine does (so never while one runs) and
/// rewrites the journal without the given slots. A running engine may change the cache
/// meanwhile: what is reported is the journal as it was when the inspector was created.
/// </summary>
internal sealed unsafe class SsdInspector : IDisposable
{
    private const int VerifyBatch = 256;
    private const string JournalName = "flexkv-journal.bin";
    private readonly string? _tempDir;
    private readonly byte[]? _copy; // the journal's bytes as read
    private readonly SsdJournal? _journal; // over the private copy
    private readonly SsdJournalContents? _contents; // per slot, what the copy's replay found (the journal keeps only positions)
    private readonly UInt128[] _seals = [];
    private ReadOnlyBlockDevice? _device;
    private BlockSeal? _seal;
    private NativeRegion? _buffer;

    /// <summary>Reads the cache in <paramref name="directories"/> (';'-separated, as <c>ssd_cache_dir</c>),
    /// and compares it with <paramref name="options"/> when given.</summary>
    public SsdInspector(string directories, EngineOptions? options = null)
    {
        Paths = directories.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (Paths.Length == 0) throw new FlexKvException(FlexKvStatus.InvalidArgument, "no SSD cache directory given");
        JournalPath = Path.Combine(Paths[0], JournalName);
        if (options is not null) Options = options;
        byte[]? journal = ReadUnlocked(JournalPath, out string? why);
        Header = journal is null ? null : SsdJournalHeader.TryRead(journal, out why, SlotsInFiles);
        Problem = why;
        if (Header is not { } h) return;
        JournalBytes = journal!.Length;
        _tempDir = Directory.CreateTempSubdirectory("flexkv-inspect-").FullName;
        try
        {
            _copy = journal;
            if (options is not null) ConfigDiscardReason = WouldDiscard(options);
            _seals = new UInt128[h.Slots];
            _journal = new SsdJournal(CopyJournal(), h.Fingerprint, h.BlockBytes, h.Stripes, h.Slots, _seals);
            _contents = _journal.Contents; // never started, so the journal keeps them
            Label = ReadLabel(h.Fingerprint, out string? labelProblem);
            LabelProblem = labelProblem;
            Problem = _journal.DiscardReason;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The directories, the journal's first.</summary>
    public string[] Paths { get; }

    /// <summary>The journal's path.</summary>
    public string JournalPath { get; }

    /// <summary>The journal header (null: no readable journal, see <see cref="Problem"/>).</summary>
    public SsdJournalHeader? Header { get; }

    /// <summary>Why the directory's content cannot be listed (null when it can).</summary>
    public string? Problem { get; }

    /// <summary>The configuration compared with, if any.</summary>
    public EngineOptions? Options { get; }

    /// <summary>With a configuration: why an engine started with it would discard the cache (null: it reuses it).</summary>
    public string? ConfigDiscardReason { get; }

    /// <summary>The fingerprint's fields the engine wrote beside the journal (<see cref="SsdCacheLabel"/>), when they are the journal's.</summary>
    public JsonElement? Label { get; }

    /// <summary>Why <see cref="Label"/> is absent (null when it is there or there is no journal).</summary>
    public string? LabelProblem { get; }

    /// <summary>Bytes of the journal when it was copied.</summary>
    public long JournalBytes { get; }

    /// <summary>Records dropped because the journal's tail was torn (a crash or kill during a write).</summary>
    public long TornRecords => _journal?.DroppedRecords ?? 0;

    /// <summary>The block each slot holds (null: free).</summary>
    /// <summary>Slots the journal was replayed over (0: nothing to list).</summary>
    public int SlotCount => _contents is null ? 0 : _seals.Length;

    /// <summary>The block slot <paramref name="slot"/> holds (null: free).</summary>
    public SsdRecord? RecordAt(int slot)
    {
        SsdJournalContents c = _contents!;
        return c.Kind[slot] == SsdJournalContents.Empty ? null
            : new SsdRecord(slot, c.Keys[slot], c.Parents[slot], c.Kind[slot] == SsdJournalContents.Child, _seals[slot]);
    }

    // The copy is replayed under the configuration's geometry: the engine's own decision.
    private string? WouldDiscard(EngineOptions o)
    {
        if (!(o.SsdCacheGb > 0)) return "the configuration has no SSD tier (ssd_cache_gb is 0)";
        if (!o.SsdPersist) return "ssd_persist is false: an engine starts with an empty SSD cache";
        long bb = EngineOptionsValidator.ResolveBlockBytes(o);
        int stripes = o.SsdCacheDir.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Length;
        int slots = SlotsFor(o);
        using var j = new SsdJournal(CopyJournal(), CacheFingerprint.From(o).Value, bb, Math.Max(stripes, 1), slots, new UInt128[slots]);
        return j.DiscardReason;
    }

    /// <summary>SSD slots an engine with these options has (<see cref="SsdSpace.Plan"/>'s arithmetic, without its space check).</summary>
    public static int SlotsFor(EngineOptions o)
    {
        long extent = ExtentOf(EngineOptionsValidator.ResolveBlockBytes(o));
        return (int)Math.Min(Math.Floor(o.SsdCacheGb * (1L << 30) / extent), int.MaxValue);
    }

    /// <summary>Bytes an SSD slot takes for blocks of <paramref name="blockBytes"/> bytes.</summary>
    public static long ExtentOf(long blockBytes) => SsdSpace.ExtentOf(blockBytes);

    // The journal does not record the slot count: the data files, preallocated to the engine's
    // size, give it (slot s is in file s % n at (s / n) * extent). A missing file counts 0.
    private int SlotsInFiles(int stripes, long blockBytes)
    {
        long extent = ExtentOf(blockBytes), most = 0;
        for (int d = 0; d < Paths.Length; d++)
        {
            try { most = Math.Max(most, new FileInfo(Path.Combine(Paths[d], SsdSpace.BlocksFile)).Length / extent); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return (int)Math.Min(most * stripes, int.MaxValue);
    }

    // Shown only when its fingerprint is the journal's: the engine never reads the label, so a
    // label left by another cache or edited by hand must not be taken for this cache's.
    private JsonElement? ReadLabel(UInt128 fingerprint, out string? why)
    {
        why = null;
        string path = Path.Combine(Paths[0], SsdCacheLabel.FileName);
        try
        {
            if (new FileInfo(path).Length > 64 * 1024) { why = $"{SsdCacheLabel.FileName} is too large to be a label"; return null; }
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("fingerprint", out JsonElement fp) || fp.ValueKind != JsonValueKind.String)
            {
                why = $"{SsdCacheLabel.FileName} names no fingerprint";
                return null;
            }
            if (fp.GetString() != fingerprint.ToString("x32", System.Globalization.CultureInfo.InvariantCulture))
            {
                why = $"{SsdCacheLabel.FileName} belongs to another cache (its fingerprint differs from the journal's)";
                return null;
            }
            return root.Clone();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            why = $"no {SsdCacheLabel.FileName} beside the journal (an engine writes it when it opens the cache): only the fingerprint's hash is known";
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            why = $"{SsdCacheLabel.FileName} cannot be read: {e.Message}";
            return null;
        }
    }

    // The journal as read once, written to the private directory for SsdJournal to replay (and
    // rewrite) there; written again for each replay, since a replay rewrites the file.
    private string CopyJournal()
    {
        string copy = Path.Combine(_tempDir!, JournalName);
        File.WriteAllBytes(copy, _copy!);
        return copy;
    }

    // A running engine holds its journal with .NET's FileShare.None, which .NET enforces with an
    // advisory lock that a FileStream here would trip over; open(2) itself takes no lock.
    private static byte[]? ReadUnlocked(string path, out string? why)
    {
        why = null;
        int fd = LibcMethods.Open(path, 0 /* O_RDONLY */ | LibcMethods.OCloexec, 0);
        if (fd < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            why = errno == LibcMethods.Enoent ? "no journal (flexkv-journal.bin): the directory holds no FlexKv cache"
                : $"the journal cannot be read (errno {errno})";
            return null;
        }
        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var data = new byte[RandomAccess.GetLength(handle)];
            int got = 0;
            while (got < data.Length)
            {
                int n = RandomAccess.Read(handle, data.AsSpan(got), got);
                if (n == 0) break; // shortened meanwhile: what was read is the snapshot
                got += n;
            }
            return got == data.Length ? data : data[..got];
        }
        catch (IOException e)
        {
            why = $"the journal cannot be read: {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// Re-reads every block held in slots [<paramref name="firstSlot"/>, firstSlot + count) and checks
    /// it as a load from SSD does (the block's seal for its key, under the configuration's secret
    /// when one was given); writes the slots that fail into <paramref name="bad"/> (as many as fit)
    /// and returns how many failed. <paramref name="checkedBlocks"/> is how many were read.
    /// </summary>
    public int Verify(int firstSlot, int count, Span<int> bad, out int checkedBlocks)
    {
        checkedBlocks = 0;
        if (_journal is null || Problem is not null) throw new FlexKvException(FlexKvStatus.InvalidState, $"nothing to verify: {Problem}");
        SsdJournalHeader h = Header!.Value;
        _device ??= new ReadOnlyBlockDevice(Paths, h.Slots, h.BlockBytes);
        _seal ??= new BlockSeal(h.Fingerprint, Options?.Secret);
        long stride = _device.ExtentBytes;
        _buffer ??= new NativeRegion(stride * VerifyBatch, hugePages: false);
        Span<int> slots = stackalloc int[VerifyBatch];
        Span<nint> buffers = stackalloc nint[VerifyBatch];
        Span<int> errors = stackalloc int[VerifyBatch];
        for (int k = 0; k < VerifyBatch; k++) buffers[k] = (nint)(_buffer.Base + k * stride);
        int end = (int)Math.Min((long)firstSlot + Math.Max(count, 0), SlotCount), failed = 0;
        for (int s = Math.Max(firstSlot, 0); s < end;)
        {
            int n = 0;
            for (; s < end && n < VerifyBatch; s++)
                if (_contents!.Kind[s] != SsdJournalContents.Empty) slots[n++] = s;
            if (n == 0) break;
            _device.Read(slots[..n], buffers[..n], h.BlockBytes, errors[..n]);
            for (int k = 0; k < n; k++)
            {
                SsdRecord r = RecordAt(slots[k])!.Value;
                bool ok = errors[k] == 0 && _seal.Verify(r.Key, new ReadOnlySpan<byte>((void*)buffers[k], (int)h.BlockBytes), r.Seal);
                if (ok) continue;
                if (failed < bad.Length) bad[failed] = slots[k];
                failed++;
            }
            checkedBlocks += n;
        }
        return failed;
    }

    /// <summary>
    /// Journals <paramref name="slots"/> as empty in the cache itself, so no engine serves them
    /// again; their children, then unreachable, are dropped when an engine next opens the cache.
    /// Takes the directories as an engine does, so it fails while one uses them. Returns how
    /// many slots held a block.
    /// </summary>
    public int Repair(ReadOnlySpan<int> slots)
    {
        if (Header is not { } h || Problem is not null) throw new FlexKvException(FlexKvStatus.InvalidState, $"nothing to repair: {Problem}");
        using var dirs = new SsdDirectories(string.Join(';', Paths));
        using var journal = new SsdJournal(JournalPath, h.Fingerprint, h.BlockBytes, h.Stripes, h.Slots, new UInt128[h.Slots]);
        if (journal.DiscardReason is { } why) throw new FlexKvException(FlexKvStatus.InvalidState, $"nothing to repair: {why}");
        int removed = 0;
        foreach (int s in slots)
        {
            if ((uint)s >= (uint)h.Slots || !journal.Holds(s)) continue;
            journal.Drop(s);
            removed++;
        }
        journal.Start(); // rewritten without the dropped slots (a copy renamed over the journal, as compaction does)
        return removed;
    }

    /// <summary>Stops the reader, frees the buffer and removes the private copy.</summary>
    public void Dispose()
    {
        _journal?.Dispose();
        _device?.Dispose();
        _device = null;
        _seal?.Dispose();
        _seal = null;
        _buffer?.Dispose();
        _buffer = null;
        if (_tempDir is not null)
        {
            try { Directory.Delete(_tempDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
