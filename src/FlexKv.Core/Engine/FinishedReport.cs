using System.Buffers.Binary;
using System.Text;

namespace FlexKv.Core.Engine;

/// <summary>
/// Completions not yet handed to the caller. Encoded for the C ABI as records of
/// <c>[u8 kind][u32 little-endian byte length][UTF-8 request id]</c>, plus a separate list of
/// device block ids whose loads failed. Nothing is dropped when the caller's buffer is small.
/// </summary>
internal sealed class FinishedReport
{
    private readonly List<(FinishedKind Kind, string Id)> _entries = new();
    private readonly List<int> _failedBlocks = new();

    public int EntryCount => _entries.Count;

    public int FailedCount => _failedBlocks.Count;

    public void Add(FinishedKind kind, string id) => _entries.Add((kind, id));

    public void AddFailed(int deviceBlock) => _failedBlocks.Add(deviceBlock);

    /// <summary>Bytes needed to encode the entries.</summary>
    public int EncodedBytes()
    {
        int n = 0;
        foreach (var (_, id) in _entries) n += 5 + Encoding.UTF8.GetByteCount(id);
        return n;
    }

    /// <summary>Encodes and clears when both buffers are large enough; otherwise only reports sizes.</summary>
    public bool TryDrain(Span<byte> dst, Span<int> failed, out int bytes, out int failedCount)
    {
        bytes = EncodedBytes();
        failedCount = _failedBlocks.Count;
        if (bytes > dst.Length || failedCount > failed.Length) return false;
        int o = 0;
        foreach (var (kind, id) in _entries)
        {
            dst[o] = (byte)kind;
            int len = Encoding.UTF8.GetBytes(id, dst[(o + 5)..]);
            BinaryPrimitives.WriteUInt32LittleEndian(dst[(o + 1)..], (uint)len);
            o += 5 + len;
        }
        for (int i = 0; i < failedCount; i++) failed[i] = _failedBlocks[i];
        _entries.Clear();
        _failedBlocks.Clear();
        return true;
    }

    /// <summary>Takes the entries as managed objects (for tests and managed callers).</summary>
    public (List<(FinishedKind Kind, string Id)> Entries, List<int> Failed) Take()
    {
        var e = new List<(FinishedKind, string)>(_entries);
        var f = new List<int>(_failedBlocks);
        _entries.Clear();
        _failedBlocks.Clear();
        return (e, f);
    }
}
