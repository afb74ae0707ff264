// Data safety for commands that write a dataset folder (`residual data import`, and any other
// writer that adopts it): a folder is only ever written into, and files are only ever deleted,
// when the folder is empty or holds this writer's own manifest.json. The manifest is written
// FIRST, before any data file, and names every file the writer is about to create (marked
// incomplete); it is rewritten as complete at the end. So at any moment, even after a kill, the
// folder either holds nothing of ours or a manifest naming everything we wrote. Replacing an
// earlier (interrupted or different) result deletes exactly the files the old manifest names,
// and only when the folder holds nothing else: a file the writer did not make is never touched
// and makes the writer refuse, naming it.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ResidualEngine.Data;

/// <summary>What a folder holds, seen by one writer.</summary>
public enum FolderState
{
    /// <summary>Missing or empty: free to write.</summary>
    Empty,

    /// <summary>This writer's complete result with the same parameters, every named file present.</summary>
    Complete,

    /// <summary>This writer's earlier result (interrupted, or other parameters) and nothing else: may be replaced.</summary>
    Replaceable,
}

/// <summary>The manifest.json of a folder written through <see cref="OwnedFolder"/>.</summary>
/// <param name="Generator">Who wrote the folder (e.g. "residual-data-import").</param>
/// <param name="Version">The writer's format version.</param>
/// <param name="Complete">False from the first byte written until the last file is in place.</param>
/// <param name="Parameters">What was written (source, options); equal parameters mean an equal result.</param>
/// <param name="Files">Every file the writer creates: folder (relative, '/'-separated, "" = the root) to file names.</param>
public sealed record FolderManifest(string Generator, int Version, bool Complete, JsonObject Parameters,
    SortedDictionary<string, List<string>> Files)
{
    public int FileCount => Files.Values.Sum(f => f.Count);
}

public static class OwnedFolder
{
    public const string ManifestName = "manifest.json";

    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = false };

    /// <summary>Reads a folder's manifest; null when there is none or it is not one of ours (not a manifest of this shape).</summary>
    public static FolderManifest? ReadManifest(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var path = Path.Combine(root, ManifestName);
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null) return null;
        // A manifest naming a million files is ~30 MB; anything far beyond is not ours.
        if (info.Length > 256L << 20) return null;
        try
        {
            // Only a regular file is read (a FIFO named manifest.json would block).
            var m = JsonSerializer.Deserialize<FolderManifest>(ResidualEngine.IO.SafeFile.ReadAllText(path, "manifest", 256L << 20));
            return m is { Generator: not null, Parameters: not null, Files: not null } && m.Files.Values.All(v => v is not null) ? m : null;
        }
        catch (JsonException)
        {
            return null;
        }
        catch (NotSupportedException)
        {
            return null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// How <paramref name="root"/> stands for <paramref name="generator"/> writing <paramref name="parameters"/>.
    /// Throws IOException (naming the folder and a file) when the folder holds anything this writer did not write.
    /// </summary>
    public static FolderState Inspect(string root, string generator, JsonObject parameters)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentNullException.ThrowIfNull(parameters);
        root = Path.GetFullPath(root);
        if (File.Exists(root)) throw new IOException($"'{root}' is a file, not a folder; choose a new or empty folder");
        if (!Directory.Exists(root) || !Directory.EnumerateFileSystemEntries(root).Any()) return FolderState.Empty;
        var m = ReadManifest(root);
        if (m is null || m.Generator != generator)
            throw new IOException($"'{root}' is not empty and was not written by {generator} (it has no {ManifestName} of ours); " +
                "nothing was changed: choose a new or empty folder");
        var stranger = FirstForeignEntry(root, m);
        if (stranger is not null)
            throw new IOException($"'{root}' was written by {generator} but now also holds '{stranger}', which it did not write; " +
                "nothing was changed: move that away or choose another folder");
        bool same = m.Complete && JsonNode.DeepEquals(m.Parameters, parameters);
        if (same && AllFilesPresent(root, m)) return FolderState.Complete;
        return FolderState.Replaceable;
    }

    /// <summary>
    /// Makes <paramref name="root"/> ready for a new result: refuses a folder with files not ours
    /// (see <see cref="Inspect"/>), deletes the files an earlier manifest of ours names, and writes
    /// the new manifest (incomplete) naming every file in <paramref name="files"/>. Returns the manifest.
    /// </summary>
    public static FolderManifest Begin(string root, string generator, int version, JsonObject parameters,
        SortedDictionary<string, List<string>> files, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        root = Path.GetFullPath(root);
        foreach (var (dir, names) in files)
        {
            CheckRelative(dir, allowEmpty: true);
            foreach (var n in names)
            {
                CheckRelative(n, allowEmpty: false);
                if (n.Contains('/', StringComparison.Ordinal)) throw new ArgumentException($"file name '{n}' must not contain '/'");
            }
        }
        var state = Inspect(root, generator, parameters);
        if (state == FolderState.Replaceable)
        {
            var old = ReadManifest(root)!;
            log?.Invoke($"{root}: replacing the {old.FileCount} files of an earlier {(old.Complete ? "result with other parameters" : "interrupted run")}");
            DeleteOwnFiles(root, old);
        }
        Directory.CreateDirectory(root);
        var manifest = new FolderManifest(generator, version, false, parameters, files);
        WriteManifest(root, manifest);
        return manifest;
    }

    /// <summary>Marks the result complete (after every file of the manifest was written).</summary>
    public static void Finish(string root, FolderManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        root = Path.GetFullPath(root);
        if (!AllFilesPresent(root, manifest))
            throw new InvalidOperationException($"'{root}': not every file the manifest names was written");
        WriteManifest(root, manifest with { Complete = true });
    }

    private static void WriteManifest(string root, FolderManifest m)
    {
        var path = Path.Combine(root, ManifestName);
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            JsonSerializer.Serialize(f, m, s_json);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static void CheckRelative(string p, bool allowEmpty)
    {
        if (p.Length == 0 && allowEmpty) return;
        if (p.Length == 0 || p.StartsWith('/') || p.Contains('\\', StringComparison.Ordinal) || p.Contains('\0', StringComparison.Ordinal) ||
            p.Split('/').Any(s => s is "" or "." or ".."))
            throw new ArgumentException($"manifest path '{p}' must be a plain relative path inside the folder");
    }

    private static bool AllFilesPresent(string root, FolderManifest m)
    {
        foreach (var (dir, names) in m.Files)
            foreach (var n in names)
                if (!File.Exists(Path.Combine(root, dir, n))) return false;
        return true;
    }

    /// <summary>The first entry under <paramref name="root"/> the manifest does not account for (files it names, folders on their paths), or null.</summary>
    private static string? FirstForeignEntry(string root, FolderManifest m)
    {
        var files = new HashSet<string>(StringComparer.Ordinal) { ManifestName, ManifestName + ".tmp" };
        var dirs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (dir, names) in m.Files)
        {
            if (!IsSafeRelative(dir)) return dir;
            for (var d = dir; d.Length > 0; d = d.Contains('/', StringComparison.Ordinal) ? d[..d.LastIndexOf('/')] : "") dirs.Add(d);
            foreach (var n in names)
            {
                if (!IsSafeRelative(n)) return n;
                files.Add(dir.Length == 0 ? n : dir + "/" + n);
            }
        }
        return Walk(root, "", files, dirs);
    }

    private static bool IsSafeRelative(string p)
    {
        try { CheckRelative(p, allowEmpty: true); return true; }
        catch (ArgumentException) { return false; }
    }

    private static string? Walk(string root, string rel, HashSet<string> files, HashSet<string> dirs)
    {
        foreach (var entry in new DirectoryInfo(Path.Combine(root, rel)).EnumerateFileSystemInfos())
        {
            var r = rel.Length == 0 ? entry.Name : rel + "/" + entry.Name;
            bool link = entry.LinkTarget is not null;
            if (entry is DirectoryInfo && !link)
            {
                if (!dirs.Contains(r)) return r;
                var inner = Walk(root, r, files, dirs);
                if (inner is not null) return inner;
            }
            else if (link || entry is not FileInfo || !files.Contains(r) || (entry.Attributes & FileAttributes.Device) != 0)
            {
                return r;
            }
        }
        return null;
    }

    /// <summary>Deletes the files a manifest names, then its folders once empty (deepest first), then the manifest.</summary>
    private static void DeleteOwnFiles(string root, FolderManifest m)
    {
        foreach (var (dir, names) in m.Files)
            foreach (var n in names)
            {
                var p = Path.Combine(root, dir, n);
                if (File.Exists(p)) File.Delete(p);
            }
        foreach (var dir in m.Files.Keys.Where(d => d.Length > 0).OrderByDescending(d => d.Count(c => c == '/')).ThenByDescending(d => d, StringComparer.Ordinal))
        {
            for (var d = dir; d.Length > 0; d = d.Contains('/', StringComparison.Ordinal) ? d[..d.LastIndexOf('/')] : "")
            {
                var p = Path.Combine(root, d);
                if (Directory.Exists(p) && !Directory.EnumerateFileSystemEntries(p).Any()) Directory.Delete(p);
            }
        }
        File.Delete(Path.Combine(root, ManifestName));
    }
}
