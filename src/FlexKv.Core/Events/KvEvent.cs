using System.Runtime.InteropServices;

namespace FlexKv.Core.Events;

/// <summary>
/// One KV event as the C ABI hands it out (<c>flexkv_kv_event_t</c>, 72 bytes): the kind, the
/// tier (<see cref="Metrics.MetricTier"/>), and the block's and its parent's vLLM hashes
/// (up to <see cref="MaxHashBytes"/> bytes each; a length of 0: none).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1, Size = 72)]
internal unsafe struct KvEvent
{
    public const int MaxHashBytes = 32;

    public KvEventKind Kind;
    public byte Medium;
    public byte HashLength;
    public byte ParentLength;
    private fixed byte _reserved[4];
    public fixed byte Hash[MaxHashBytes];
    public fixed byte Parent[MaxHashBytes];
}
