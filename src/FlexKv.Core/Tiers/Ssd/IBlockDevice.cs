namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// Fixed-size block extents on storage, addressed by slot. Batches are given sorted by slot so
/// implementations can coalesce neighbours into one vectored call. Errors are reported per item
/// as an errno (0 = ok); a device never throws for an I/O error. Called from the SSD threads.
/// </summary>
internal unsafe interface IBlockDevice : IDisposable
{
    /// <summary>Number of slots.</summary>
    int NumSlots { get; }

    /// <summary>Bytes reserved per slot (a multiple of the I/O alignment).</summary>
    long ExtentBytes { get; }

    /// <summary>Whether reads and writes bypass the page cache (O_DIRECT).</summary>
    bool Direct { get; }

    /// <summary>Reads <paramref name="bytes"/> bytes of each slot into the matching buffer.</summary>
    void Read(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors);

    /// <summary>Writes <paramref name="bytes"/> bytes of each buffer into the matching slot.</summary>
    void Write(ReadOnlySpan<int> slots, ReadOnlySpan<nint> buffers, long bytes, Span<int> errors);
}
