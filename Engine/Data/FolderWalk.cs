// The image files under each class folder of an ImageFolder, safe against symbolic links.
// Folders are keyed by their real identity (device + inode on Unix, the final path elsewhere),
// never by the path they were reached through, so a loop (`loop -> ..`, `up -> ../../train`)
// is entered once at most and the walk always ends. Three passes, so that labels never depend
// on links:
//   1. each class's own tree, following no link below the class folder: these folders belong to
//      that class, whatever links elsewhere point at them;
//   2. the links found on the way, class by class in class order: a linked folder is listed
//      (with its sub-folders) under the class whose tree holds the link, unless it was already
//      listed, belongs to another class, or is the split folder or one of its ancestors;
//   3. the files of every listed folder; a link to a file that is listed where it really lies
//      (or that another link already gave) is not counted a second time.
// What was left out, and why, goes to Notes. Order within a class is torchvision's: folders by
// path, ordinal; files ordinal within a folder.
using System.IO.Enumeration;
using ResidualEngine.IO;

namespace ResidualEngine.Data;

internal sealed class FolderWalk
{
    // Guards against pathological trees; no real dataset is this deep.
    private const int MaxDepth = 64;

    private readonly HashSet<FileId> _seen = new();     // folders listed under some class
    private readonly HashSet<FileId> _blocked = new();  // the split folder and its ancestors
    private readonly HashSet<FileId> _linkedFiles = new();
    private readonly CancellationToken _cancel;
    private static readonly EnumerationOptions s_all = new() { AttributesToSkip = 0, RecurseSubdirectories = false, IgnoreInaccessible = false };

    public List<string> Notes { get; } = new();

    private FolderWalk(CancellationToken cancel) => _cancel = cancel;

    /// <summary>Image files per class folder (same order as <paramref name="classDirs"/>).</summary>
    public static (List<string>[] Files, List<string> Notes) Run(string splitRoot, IReadOnlyList<string> classDirs, CancellationToken cancel)
    {
        var w = new FolderWalk(cancel);
        // The split folder and its ancestors are never listed under a class: a link up there is a loop.
        for (var d = RealOrSelf(splitRoot); d is not null; d = Path.GetDirectoryName(d))
            if (Id(d) is { } id) w._blocked.Add(id);

        var dirs = new List<string>[classDirs.Count];
        var links = new List<(string Path, int Depth)>[classDirs.Count];
        for (int c = 0; c < classDirs.Count; c++)
        {
            dirs[c] = new();
            links[c] = new();
            if (Id(classDirs[c]) is not { } id || w._blocked.Contains(id) || !w._seen.Add(id))
            {
                w.Notes.Add($"{classDirs[c]}: skipped, it is the same folder as another class folder or the split folder");
                continue;
            }
            w.Own(classDirs[c], 0, dirs[c], links[c]);
        }
        for (int c = 0; c < classDirs.Count; c++)
            for (int i = 0; i < links[c].Count; i++) // grows while linked folders are walked
                w.Follow(links[c][i].Path, links[c][i].Depth, dirs[c], links[c]);

        var files = new List<string>[classDirs.Count];
        for (int c = 0; c < classDirs.Count; c++)
        {
            dirs[c].Sort(StringComparer.Ordinal);
            files[c] = new();
            foreach (var d in dirs[c]) w.AddFiles(d, files[c]);
        }
        return (files, w.Notes);
    }

    /// <summary>Pass 1: a folder of the class's own tree; links are kept for pass 2.</summary>
    private void Own(string dir, int depth, List<string> dirs, List<(string, int)> links)
    {
        _cancel.ThrowIfCancellationRequested();
        dirs.Add(dir);
        foreach (var (path, isDir, isLink) in Entries(dir))
        {
            if (!isDir) continue;
            if (isLink) { links.Add((path, depth + 1)); continue; }
            if (SafeFile.HasUndecodableName(path)) { Notes.Add($"{path}: skipped, its name is not valid UTF-8"); continue; }
            if (depth + 1 > MaxDepth) { Notes.Add($"{path}: skipped, deeper than {MaxDepth} folders"); continue; }
            if (Id(path) is { } id && !_blocked.Contains(id) && _seen.Add(id)) Own(path, depth + 1, dirs, links);
        }
    }

    /// <summary>Pass 2: a folder reached through a link, listed once at most.</summary>
    private void Follow(string dir, int depth, List<string> dirs, List<(string, int)> links)
    {
        _cancel.ThrowIfCancellationRequested();
        if (depth > MaxDepth) { Notes.Add($"{dir}: skipped, deeper than {MaxDepth} folders"); return; }
        var id = Id(dir);
        if (id is null) { Notes.Add($"{dir}: skipped, a link to nothing"); return; }
        if (_blocked.Contains(id.Value) || !_seen.Add(id.Value))
        {
            Notes.Add($"{dir}: skipped, a link to a folder that is listed already (a loop, or another class's folder)");
            return;
        }
        dirs.Add(dir);
        foreach (var (path, isDir, _) in Entries(dir))
            if (isDir) links.Add((path, depth + 1));
    }

    /// <summary>Pass 3: the image files of one listed folder.</summary>
    private void AddFiles(string dir, List<string> into)
    {
        _cancel.ThrowIfCancellationRequested();
        var here = new List<string>();
        foreach (var (path, isDir, isLink) in Entries(dir))
        {
            if (isDir || !ImageFolder.IsImageFile(path)) continue;
            if (isLink && !KeepFileLink(path)) continue;
            here.Add(path);
        }
        here.Sort(StringComparer.Ordinal);
        into.AddRange(here);
    }

    private bool KeepFileLink(string link)
    {
        var st = FileStat.Get(link, followLinks: true);
        if (!st.Exists) return true; // dangling: reported (and skipped) as a bad file when read
        string real;
        try { real = FileStat.RealPath(link); }
        catch (IOException) { return true; }
        var parent = Path.GetDirectoryName(real);
        if (parent is not null && Id(parent) is { } pid && _seen.Contains(pid) && ImageFolder.IsImageFile(real))
        {
            Notes.Add($"{link}: not counted twice, it links to {real}, which is listed where it lies");
            return false;
        }
        if (st.Kind != FileKind.Regular || st.Id.Device == 0 && st.Id.Path is null) return true;
        if (_linkedFiles.Add(st.Id)) return true;
        Notes.Add($"{link}: not counted twice, another link leads to the same file");
        return false;
    }

    /// <summary>A folder's entries, sorted by path (so which link wins a folder never depends on the file system's order).</summary>
    private static List<(string Path, bool IsDir, bool IsLink)> Entries(string dir)
    {
        var list = new FileSystemEnumerable<(string Path, bool IsDir, bool IsLink)>(dir,
            (ref FileSystemEntry e) => (e.ToFullPath(), e.IsDirectory, (e.Attributes & FileAttributes.ReparsePoint) != 0), s_all).ToList();
        list.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return list;
    }

    /// <summary>The identity of a folder (links followed), or null when it does not exist.</summary>
    private static FileId? Id(string path)
    {
        var st = FileStat.Get(path, followLinks: true);
        return st.Kind == FileKind.Directory ? st.Id : null;
    }

    private static string? RealOrSelf(string path)
    {
        try { return FileStat.RealPath(path); }
        catch (IOException) { return Path.GetFullPath(path); }
    }
}
