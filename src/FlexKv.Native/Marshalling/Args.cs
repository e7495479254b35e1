using System.Text;
using FlexKv.Core.Errors;

namespace FlexKv.Native.Marshalling;

/// <summary>Pointer + length checks shared by the exports; each throws an InvalidArgument error.</summary>
internal static unsafe class Args
{
    public const int MaxIdBytes = 4096;
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void NotNull(void* p, string name)
    {
        if (p == null) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"{name} is null");
    }

    /// <summary>A span over a caller array; null is allowed only with length 0.</summary>
    public static ReadOnlySpan<T> Span<T>(T* p, nuint length, string name) where T : unmanaged
    {
        if (length == 0) return default;
        if (p == null) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"{name} is null but its length is {length}");
        if (length > int.MaxValue) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"{name} length {length} is too large");
        return new ReadOnlySpan<T>(p, (int)length);
    }

    /// <summary>A writable span over a caller buffer (null with capacity 0 asks for the size only).</summary>
    public static Span<T> Out<T>(T* p, nuint capacity, string name) where T : unmanaged
    {
        if (capacity == 0) return default;
        if (p == null) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"{name} is null but its capacity is {capacity}");
        return new Span<T>(p, (int)Math.Min(capacity, int.MaxValue));
    }

    /// <summary>Checks and returns the UTF-8 bytes of a request id.</summary>
    public static ReadOnlySpan<byte> Id(byte* p, nuint length)
    {
        if (p == null) throw new FlexKvException(FlexKvStatus.InvalidArgument, "request id is null");
        if (length == 0) throw new FlexKvException(FlexKvStatus.InvalidArgument, "request id is empty");
        if (length > MaxIdBytes) throw new FlexKvException(FlexKvStatus.InvalidArgument, $"request id is {length} bytes; the limit is {MaxIdBytes}");
        return new ReadOnlySpan<byte>(p, (int)length);
    }

    /// <summary>Decodes UTF-8 into <paramref name="chars"/> (sized by the caller, e.g. stackalloc).</summary>
    public static ReadOnlySpan<char> Decode(ReadOnlySpan<byte> utf8, Span<char> chars)
    {
        int n;
        try
        {
            // The strict encoding throws on invalid bytes rather than returning false.
            if (!s_strictUtf8.TryGetChars(utf8, chars, out n)) n = -1;
        }
        catch (DecoderFallbackException)
        {
            n = -1;
        }
        if (n < 0) throw new FlexKvException(FlexKvStatus.InvalidArgument, "request id is not valid UTF-8");
        return chars[..n];
    }

    /// <summary>Writes UTF-8 text into a caller buffer, or fails with the size needed.</summary>
    public static int WriteText(ReadOnlySpan<byte> utf8, byte* buf, nuint capacity, nuint* needed)
    {
        NotNull(needed, "needed");
        *needed = (nuint)utf8.Length + 1;
        if (capacity < (nuint)utf8.Length + 1)
            return LastError.Set(FlexKvStatus.BufferTooSmall, $"buffer of {capacity} bytes is too small; {utf8.Length + 1} needed");
        NotNull(buf, "buffer");
        utf8.CopyTo(new Span<byte>(buf, utf8.Length));
        buf[utf8.Length] = 0;
        return 0;
    }
}
