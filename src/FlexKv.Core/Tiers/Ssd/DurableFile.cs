using System.Runtime.InteropServices;
using FlexKv.Core.Memory;
using Microsoft.Win32.SafeHandles;

namespace FlexKv.Core.Tiers.Ssd;

/// <summary>
/// Replaces a file so that a crash at any moment leaves either the old or the new one whole:
/// the new content goes to <c>path.tmp</c> (created 0600), is fsynced, renamed over the file,
/// and the directory is fsynced so the rename itself survives. A stale temp file (a process
/// killed while writing it) is simply overwritten by the next replace. The new file comes back
/// open, so the caller never writes to a name that could point elsewhere.
/// </summary>
internal static class DurableFile
{
    private const int Mode0600 = 0x180;

    /// <summary>Writes the new content with <paramref name="write"/> (returns its length) and puts it in place.</summary>
    public static SafeFileHandle Replace(string path, Func<SafeFileHandle, long> write, out long length)
    {
        string tmp = path + ".tmp";
        SafeFileHandle? h = null;
        try
        {
            int fd = LibcMethods.Open(tmp, LibcMethods.OWronly | LibcMethods.OCreat | LibcMethods.OTrunc | LibcMethods.OCloexec, Mode0600);
            if (fd < 0) throw new IOException($"cannot create '{tmp}' (errno {Marshal.GetLastPInvokeError()})");
            h = new SafeFileHandle(fd, ownsHandle: true);
            if (LibcMethods.Fchmod(fd, Mode0600) != 0) // a stale temp file keeps its mode otherwise
                throw new IOException($"cannot chmod '{tmp}' (errno {Marshal.GetLastPInvokeError()})");
            length = write(h);
            if (LibcMethods.Fsync(fd) != 0) throw new IOException($"cannot fsync '{tmp}' (errno {Marshal.GetLastPInvokeError()})");
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            h?.Dispose();
            try { File.Delete(tmp); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            throw;
        }
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return h;
    }

    // Without it a power loss could bring the old name back. A failure here is not reported: the
    // rename is already visible to every later open, and an older journal is still consistent
    // (every block it names is checked when read).
    private static void SyncDirectory(string dir)
    {
        int fd = LibcMethods.Open(dir, LibcMethods.ORdonly | LibcMethods.ODirectory | LibcMethods.OCloexec, 0);
        if (fd < 0) return;
        LibcMethods.Fsync(fd);
        LibcMethods.Close(fd);
    }
}
