namespace FlexKv.Core.Memory;

/// <summary>What the machine can give: MemAvailable from /proc/meminfo.</summary>
internal static class MemoryInfo
{
    /// <summary>Available memory in bytes, or null where /proc/meminfo cannot be read.</summary>
    public static long? AvailableBytes()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/meminfo"))
            {
                if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal)) continue;
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
