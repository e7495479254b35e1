using System.Diagnostics;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>
/// A tmpfs of a few MiB mounted for one test, so a test can ask for more SSD space than a
/// filesystem has without ever touching the real disk (a regression there would fill it). Needs
/// the right to mount (root with CAP_SYS_ADMIN); tests using it are skipped elsewhere.
/// </summary>
internal sealed class SmallFilesystem : IDisposable
{
    private static readonly Lazy<bool> CanMount = new(Probe);

    public SmallFilesystem(int mib)
    {
        Root = Directory.CreateTempSubdirectory("flexkv-tmpfs-").FullName;
        if (!Mount(Root, mib)) throw new InvalidOperationException($"cannot mount a tmpfs on {Root}");
    }

    public static bool Available => CanMount.Value;

    /// <summary>The mount point.</summary>
    public string Root { get; }

    /// <summary>Bytes an unprivileged writer could still allocate (what the engine must check against).</summary>
    public long FreeBytes => new DriveInfo(Root).AvailableFreeSpace;

    private static bool Probe()
    {
        if (Environment.UserName != "root") return false;
        string dir = Directory.CreateTempSubdirectory("flexkv-tmpfs-probe-").FullName;
        try
        {
            if (!Mount(dir, 1)) return false;
            Run("umount", dir);
            return true;
        }
        finally
        {
            try { Directory.Delete(dir); } catch (IOException) { }
        }
    }

    private static bool Mount(string dir, int mib) => Run("mount", "-t", "tmpfs", "-o", $"size={mib}m,mode=0700", "tmpfs", dir);

    private static bool Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        try
        {
            using Process p = Process.Start(psi)!;
            p.WaitForExit(10_000);
            return p.HasExited && p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no mount(8)
        }
    }

    public void Dispose()
    {
        Run("umount", Root);
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A fact that needs <see cref="SmallFilesystem"/>: skipped (with the reason) where tmpfs cannot be mounted.</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute()
    {
        if (!SmallFilesystem.Available) Skip = "needs the right to mount a tmpfs (root)";
    }
}
