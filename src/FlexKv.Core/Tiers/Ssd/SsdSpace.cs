using System.Globalization;
using FlexKv.Core.Errors;
using FlexKv.Core.Memory;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// How many slots <c>ssd_cache_gb</c> buys and whether their files fit, decided before anything is
/// allocated: a size the filesystems cannot hold is a configuration error naming the size asked
/// and the space free, not a full disk. Sizes are doubles until they are known to fit, so any
/// finite value (1e308 included) gives that error instead of wrapping or throwing.
/// </summary>
internal static class SsdSpace
{
    /// <summary>The cache file in each directory.</summary>
    public const string BlocksFile = "flexkv-blocks.dat";

    /// <summary>What one cache file needs on its filesystem.</summary>
    public readonly record struct FileSpace(string Directory, ulong Device, double WantBytes, long AllocatedBytes, long FreeBytes);

    /// <summary>Bytes one slot takes on disk (O_DIRECT moves whole 4 KiB-aligned extents).</summary>
    public static long ExtentOf(long blockBytes) => (blockBytes + DirectFileDevice.Alignment - 1) / DirectFileDevice.Alignment * DirectFileDevice.Alignment;

    /// <summary>Slots file <paramref name="d"/> of <paramref name="n"/> holds (slot s lives in file s % n).</summary>
    public static long SlotsInFile(long numSlots, int n, int d) => (numSlots - d + n - 1) / n;

    /// <summary>
    /// The slot count for <paramref name="gb"/> GiB of <paramref name="blockBytes"/>-byte blocks over
    /// <paramref name="directories"/>, after checking that the files fit; throws InvalidConfig naming ssd_cache_gb.
    /// </summary>
    public static int Plan(double gb, long blockBytes, IReadOnlyList<string> directories)
    {
        long extent = ExtentOf(blockBytes);
        double slots = Math.Floor(gb * (1L << 30) / extent);
        if (!(slots >= 1))
            Fail($"{Gib(gb)} holds no block of {extent} bytes");
        int n = directories.Count;
        var files = new FileSpace[n];
        for (int d = 0; d < n; d++)
        {
            string dir = directories[d];
            double want = Math.Ceiling((slots - d) / n) * extent;
            files[d] = new FileSpace(dir, LibcMethods.DeviceOf(dir) ?? (ulong)d, want,
                LibcMethods.AllocatedBytesOf(Path.Combine(dir, BlocksFile)), LibcMethods.FreeBytesOf(dir));
        }
        if (Shortfall(gb, files) is { } why) Fail(why);
        if (slots > int.MaxValue)
            Fail($"{Gib(gb)} is {slots:0} blocks of {extent} bytes, more than the {int.MaxValue} one engine can index");
        return (int)slots;
    }

    /// <summary>
    /// Why the files do not fit (null when they do): per filesystem, what the files need beyond
    /// what they already hold (a file being reopened is not counted against itself) must be free.
    /// </summary>
    public static string? Shortfall(double gb, IReadOnlyList<FileSpace> files)
    {
        foreach (IGrouping<ulong, FileSpace> fs in files.GroupBy(f => f.Device))
        {
            long free = fs.First().FreeBytes;
            if (free < 0) continue; // statvfs failed: the allocation itself will tell
            double more = fs.Sum(f => Math.Max(0, f.WantBytes - f.AllocatedBytes));
            if (more > free)
                return $"{Gib(gb)} needs {Bytes(more)} more in '{string.Join("', '", fs.Select(f => f.Directory))}' " +
                       $"but only {free} bytes ({free / (double)(1L << 30):0.###} GiB) are free there; lower ssd_cache_gb";
        }
        return null;
    }

    private static string Gib(double gb) => gb.ToString(CultureInfo.InvariantCulture) + " GiB";

    private static string Bytes(double b) => b < long.MaxValue ? $"{(long)b} bytes" : "over 8 EiB";

    private static void Fail(string what) =>
        throw new FlexKvException(FlexKvStatus.InvalidConfig, $"configuration key 'ssd_cache_gb': {what}");
}
