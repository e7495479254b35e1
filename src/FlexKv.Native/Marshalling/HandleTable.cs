using System.Collections.Concurrent;
using FlexKv.Core.Errors;

namespace FlexKv.Native.Marshalling;

/// <summary>
/// Opaque 64-bit handles for objects handed to C: a never-reused sequence number in the high 32
/// bits and 32 random bits below it. A stale handle, a garbage value, or a live handle off by a
/// few (a neighbour in a caller's array, a handle plus one) finds nothing and becomes
/// <see cref="FlexKvStatus.InvalidHandle"/>, never another live engine and never a crash.
/// </summary>
internal static class HandleTable
{
    private static readonly ConcurrentDictionary<ulong, object> s_objects = new();
    // Starts far from small integers so that 0, 1, 2… passed by mistake are never valid.
    private static long s_next = 0x5F1E;

    public static ulong Add(object o)
    {
        ulong seq = (ulong)Interlocked.Increment(ref s_next);
        ulong h = (seq << 32) | (uint)System.Security.Cryptography.RandomNumberGenerator.GetInt32(1, int.MaxValue);
        s_objects[h] = o;
        return h;
    }

    public static T Get<T>(ulong handle) where T : class
    {
        if (!s_objects.TryGetValue(handle, out object? o))
            throw new FlexKvException(FlexKvStatus.InvalidHandle, $"handle 0x{handle:x} is unknown or was destroyed");
        return o as T ?? throw new FlexKvException(FlexKvStatus.InvalidHandle, $"handle 0x{handle:x} is not a {typeof(T).Name}");
    }

    public static T? Remove<T>(ulong handle) where T : class
    {
        if (!s_objects.TryGetValue(handle, out object? o) || o is not T t)
            throw new FlexKvException(FlexKvStatus.InvalidHandle, $"handle 0x{handle:x} is unknown or was destroyed");
        return s_objects.TryRemove(handle, out _) ? t : null;
    }
}
