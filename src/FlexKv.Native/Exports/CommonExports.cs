using System.Runtime.InteropServices;
using System.Text;
using FlexKv.Native.Marshalling;

namespace FlexKv.Native.Exports;

/// <summary>Library-wide exports: ABI version and the thread's last error.</summary>
internal static unsafe class CommonExports
{
    /// <summary>Bumped on any incompatible change of include/flexkv.h.</summary>
    public const int AbiVersion = 2;

    [UnmanagedCallersOnly(EntryPoint = "flexkv_abi_version")]
    public static int GetAbiVersion(int* version)
    {
        if (version == null) return LastError.Set(Core.Errors.FlexKvStatus.InvalidArgument, "version is null");
        *version = AbiVersion;
        return 0;
    }

    [UnmanagedCallersOnly(EntryPoint = "flexkv_last_error")]
    public static int GetLastError(byte* buffer, nuint capacity, nuint* needed)
    {
        try
        {
            // Reading the message must not replace it, so write it directly.
            byte[] utf8 = Encoding.UTF8.GetBytes(LastError.Message);
            if (needed == null) return (int)Core.Errors.FlexKvStatus.InvalidArgument;
            *needed = (nuint)utf8.Length + 1;
            if (capacity < (nuint)utf8.Length + 1 || buffer == null) return (int)Core.Errors.FlexKvStatus.BufferTooSmall;
            utf8.CopyTo(new Span<byte>(buffer, utf8.Length));
            buffer[utf8.Length] = 0;
            return 0;
        }
        catch (Exception)
        {
            return (int)Core.Errors.FlexKvStatus.Internal;
        }
    }
}
