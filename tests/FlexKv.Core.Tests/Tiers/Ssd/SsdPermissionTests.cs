using FlexKv.Core.Tests.Engine;

namespace FlexKv.Core.Tests.Tiers.Ssd;

/// <summary>Everything the SSD tier creates or keeps open is private to its user: 0700 directories, 0600 files.</summary>
public class SsdPermissionTests
{
    private const UnixFileMode Rwx = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public void MissingParents_AreCreated0700_ExistingOnesAreLeftAlone()
    {
        using var fx = new SsdEngineFixture();
        string existing = Path.Combine(fx.Root, "shared");
        Directory.CreateDirectory(existing);
        File.SetUnixFileMode(existing, Rwx | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string leaf = Path.Combine(existing, "a", "b", "cache");
        using var h = new EngineHarness(extraConfig: $",\"ssd_cache_gb\":0.001,\"ssd_cache_dir\":\"{leaf}\"");
        foreach (string d in new[] { Path.Combine(existing, "a"), Path.Combine(existing, "a", "b"), leaf })
            Assert.Equal(Rwx, File.GetUnixFileMode(d));
        Assert.Equal(Rwx | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
            File.GetUnixFileMode(existing));
    }

    [Fact]
    public void FilesOfTheCache_Are0600_EvenWhenTheyExistedWithWiderModes()
    {
        using var fx = new SsdEngineFixture(dirs: 1);
        Directory.CreateDirectory(fx.Dirs[0]);
        string[] files = ["flexkv.lock", "flexkv-blocks.dat", "flexkv-journal.bin"];
        foreach (string f in files)
        {
            File.WriteAllBytes(Path.Combine(fx.Dirs[0], f), []);
            File.SetUnixFileMode(Path.Combine(fx.Dirs[0], f), Rw | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        }
        using var h = fx.Open();
        foreach (string f in files) Assert.Equal(Rw, File.GetUnixFileMode(Path.Combine(fx.Dirs[0], f)));
    }
}
