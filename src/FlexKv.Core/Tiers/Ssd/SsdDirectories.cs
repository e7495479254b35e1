using FlexKv.Core.Errors;
using FlexKv.Core.Memory;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// The cache directories: created 0700 together with every missing parent (existing parents
/// are left as they are), refused when owned by another user or not writable, and locked
/// (flock on <c>flexkv.lock</c>, 0600 even if it was there with another mode) so two engines
/// never share one.
/// </summary>
internal sealed class SsdDirectories : IDisposable
{
    private readonly List<int> _lockFds = new();

    public SsdDirectories(string spec)
    {
        Paths = spec.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (Paths.Length == 0)
            throw new FlexKvException(FlexKvStatus.InvalidConfig, "configuration key 'ssd_cache_dir': no directory given");
        if (Paths.Distinct().Count() != Paths.Length)
            throw new FlexKvException(FlexKvStatus.InvalidConfig, $"configuration key 'ssd_cache_dir': a directory is listed twice in '{spec}'");
        try
        {
            foreach (string dir in Paths) Prepare(dir);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string[] Paths { get; }

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    // mkdir -p would make the parents 0777 & ~umask: each missing level is made (and set) 0700 here.
    private static void CreatePrivate(string dir)
    {
        var missing = new Stack<string>();
        for (string? d = Path.GetFullPath(dir); d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d)) missing.Push(d);
        while (missing.TryPop(out string? d))
        {
            Directory.CreateDirectory(d, Private);
            File.SetUnixFileMode(d, Private); // the umask may have taken bits off
        }
    }

    private void Prepare(string dir)
    {
        try
        {
            CreatePrivate(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FlexKvException(FlexKvStatus.InvalidConfig, $"configuration key 'ssd_cache_dir': cannot create '{dir}': {e.Message}", e);
        }
        long owner = LibcMethods.OwnerOf(dir);
        if (owner >= 0 && owner != LibcMethods.Geteuid())
            throw new FlexKvException(FlexKvStatus.InvalidConfig,
                $"configuration key 'ssd_cache_dir': '{dir}' is owned by uid {owner}, not by this user; refusing to use it");
        try
        {
            File.SetUnixFileMode(dir, Private);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FlexKvException(FlexKvStatus.InvalidConfig, $"configuration key 'ssd_cache_dir': cannot secure '{dir}': {e.Message}", e);
        }
        string lockPath = Path.Combine(dir, "flexkv.lock");
        int fd = LibcMethods.Open(lockPath, LibcMethods.ORdwr | LibcMethods.OCreat | LibcMethods.OCloexec, 0x180);
        if (fd < 0)
            throw new FlexKvException(FlexKvStatus.InvalidConfig,
                $"configuration key 'ssd_cache_dir': '{dir}' is not writable (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        if (LibcMethods.Fchmod(fd, 0x180) != 0) // O_CREAT's mode applies only to a new file
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            LibcMethods.Close(fd);
            throw new FlexKvException(FlexKvStatus.InvalidConfig,
                $"configuration key 'ssd_cache_dir': cannot make '{lockPath}' private (errno {errno})");
        }
        if (LibcMethods.Flock(fd, LibcMethods.LockEx | LibcMethods.LockNb) != 0)
        {
            LibcMethods.Close(fd);
            throw new FlexKvException(FlexKvStatus.InvalidState,
                $"configuration key 'ssd_cache_dir': '{dir}' is in use by another FlexKv engine (lock {lockPath})");
        }
        _lockFds.Add(fd);
    }

    public void Dispose()
    {
        foreach (int fd in _lockFds)
        {
            LibcMethods.Flock(fd, LibcMethods.LockUn);
            LibcMethods.Close(fd);
        }
        _lockFds.Clear();
    }
}
