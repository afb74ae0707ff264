// safetensors: round trips of every dtype (scalars, zero-size tensors, metadata), the exact byte
// layout of a tiny file, a file written by the PyTorch fixture script, and hostile files that must
// each raise SafeTensorsFormatException (never another exception, never a huge allocation).
using System.Buffers.Binary;
using System.Text;
using NUnit.Framework;
using ResidualEngine.Serialization;

namespace ResidualEngine.Tests.Serialization;

public class SafeTensorsTests
{
    private static SafeTensorsFile RoundTrip(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var ms = new MemoryStream();
        SafeTensors.Write(ms, tensors, metadata);
        ms.Position = 0;
        return SafeTensors.Read(ms);
    }

    private static KeyValuePair<string, Tensor> Kv(string name, Tensor t) => new(name, t);

    [Test]
    public void RoundTripsEveryDType()
    {
        using var scope = TensorScope.Begin();
        var tensors = new[]
        {
            Kv("f64", Tensor.FromArray(new[] { 1.5, -2.25, Math.PI, 1e-300, -0.0, double.MaxValue }, 2, 3)),
            Kv("f32", Tensor.FromArray(new[] { 1.5f, -2.25f, float.Epsilon, 3e38f }, 4)),
            Kv("f16", Tensor.FromArray(new[] { (Half)1.5, (Half)(-65504), Half.Epsilon }, 3, 1)),
            Kv("bf16", Tensor.FromArray(new[] { (BFloat16)1.5f, (BFloat16)(-3e38f), (BFloat16)1e-30f, (BFloat16)0f }, 2, 2)),
            Kv("i64", Tensor.FromArray(new[] { long.MinValue, -1L, 0L, long.MaxValue }, 1, 4)),
            Kv("i32", Tensor.FromArray(new[] { int.MinValue, 7, int.MaxValue }, 3)),
            Kv("u8", Tensor.FromArray(new byte[] { 0, 1, 128, 255, 42 }, 5)),
        };
        using var f = RoundTrip(tensors);
        Assert.That(f.Tensors.Keys, Is.EqualTo(tensors.Select(t => t.Key)), "names in write order");
        foreach (var (name, t) in tensors)
        {
            var r = f[name];
            Assert.That(r.DType, Is.EqualTo(t.DType), name);
            Assert.That(r.Shape, Is.EqualTo(t.Shape), name);
            Assert.That(r.Device, Is.EqualTo(Device.Cpu), name);
            Assert.That(Bytes(r), Is.EqualTo(Bytes(t)), $"{name}: bytes");
        }
        Assert.That(f.Metadata, Is.Empty);
    }

    [Test]
    public void RoundTripsScalarsZeroSizeTensorsAndMetadata()
    {
        using var scope = TensorScope.Begin();
        var tensors = new[]
        {
            Kv("empty_front", Tensor.Zeros(new Shape(0, 3))),
            Kv("scalar", Tensor.Scalar(2.5, DType.F64)),
            Kv("zero_mid", Tensor.Zeros(new Shape(4, 0, 2), DType.I64)),
            Kv("vec", Tensor.FromArray(new[] { 1f, 2f, 3f }, 3)),
            Kv("zero_end", Tensor.Zeros(new Shape(0), DType.U8)),
        };
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\" \\ text", ["empty"] = "" };
        using var f = RoundTrip(tensors, meta);
        Assert.That(f.Tensors.Keys, Is.EqualTo(tensors.Select(t => t.Key)));
        Assert.That(f["scalar"].Shape, Is.EqualTo(Shape.Scalar));
        Assert.That(f["scalar"].Item(), Is.EqualTo(2.5));
        Assert.That(f["empty_front"].Shape, Is.EqualTo(new Shape(0, 3)));
        Assert.That(f["zero_mid"].Shape, Is.EqualTo(new Shape(4, 0, 2)));
        Assert.That(f["zero_mid"].DType, Is.EqualTo(DType.I64));
        Assert.That(f["zero_end"].Numel, Is.Zero);
        Assert.That(f["vec"].ToArray<float>(), Is.EqualTo(new[] { 1f, 2f, 3f }));
        Assert.That(f.Metadata, Is.EquivalentTo(meta));
    }

    [Test]
    public void ReadTensorsBelongToTheFileNotToTheScope()
    {
        SafeTensorsFile f;
        using (var scope = TensorScope.Begin())
            f = RoundTrip(new[] { Kv("a", Tensor.FromArray(new[] { 1.0, 2.0 }, 2)) });
        using (f)
            Assert.That(f["a"].ToArray<double>(), Is.EqualTo(new[] { 1.0, 2.0 }), "the tensor outlives the scope it was read in");
        Assert.That(f["a"].IsDisposed, Is.True, "disposing the file frees its tensors");
    }

    [Test]
    public void WritesTheExactByteLayout()
    {
        using var scope = TensorScope.Begin();
        using var ms = new MemoryStream();
        SafeTensors.Write(ms,
            new[] { Kv("a", Tensor.FromArray(new[] { 1f, -2f }, 2)), Kv("n", Tensor.Scalar(-3, DType.I64)) },
            new Dictionary<string, string> { ["k"] = "v" });

        // Written out by hand: 132 bytes of JSON padded with 4 spaces to 136, metadata first,
        // then the buffer: 1.0f, -2.0f (little-endian) and -3L.
        const string json = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          + "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}    ";
        var expected = new List<byte> { 136, 0, 0, 0, 0, 0, 0, 0 };
        expected.AddRange(Encoding.ASCII.GetBytes(json));
        expected.AddRange(new byte[] { 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0 });
        expected.AddRange(new byte[] { 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff });
        Assert.That(ms.ToArray(), Is.EqualTo(expected.ToArray()));
    }

    [Test]
    public void ReadsUnpaddedHeadersWithTensorsOutOfOffsetOrder()
    {
        // Header order differs from data order, and the header is not padded: both are legal.
        var file = Build("{\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]},\"a\":{\"data_offsets\":[0,4],\"shape\":[],\"dtype\":\"F32\"}}",
            new byte[] { 0x00, 0x00, 0x20, 0x41, 0x05, 0x00, 0x00, 0x00 });
        using var f = SafeTensors.Read(new MemoryStream(file));
        Assert.That(f.Tensors.Keys, Is.EqualTo(new[] { "b", "a" }));
        Assert.That(f["a"].Item(), Is.EqualTo(10.0));
        Assert.That(f["b"].ToArray<int>(), Is.EqualTo(new[] { 5 }));
    }

    [Test]
    public void ReadsFromANonSeekableStream()
    {
        using var scope = TensorScope.Begin();
        using var ms = new MemoryStream();
        SafeTensors.Write(ms, new[] { Kv("x", Tensor.FromArray(new[] { 1.0, 2.0, 3.0 }, 3)) });
        using var f = SafeTensors.Read(new ForwardOnlyStream(ms.ToArray()));
        Assert.That(f["x"].ToArray<double>(), Is.EqualTo(new[] { 1.0, 2.0, 3.0 }));
        // Trailing bytes that no tensor owns are an error there too.
        var padded = ms.ToArray().Concat(new byte[] { 1 }).ToArray();
        Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new ForwardOnlyStream(padded)));
    }

    [Test]
    public void ReadsTheFileWrittenByThePyTorchScript()
    {
        // Tools/reference/make_fixtures.py writes each dtype from torch tensors holding
        // v_i = (i - 2) * 0.75 (ints: i - 2) in a (2, 3) shape, with metadata {"writer": "torch"}.
        var path = Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "safetensors", "torch_dtypes.safetensors");
        using var f = SafeTensors.Load(path);
        Assert.That(f.Metadata["writer"], Is.EqualTo("torch"));
        var expected = Enumerable.Range(0, 6).Select(i => (i - 2) * 0.75).ToArray();
        var ints = Enumerable.Range(0, 6).Select(i => (double)(i - 2)).ToArray();
        foreach (var (name, dt) in new[] { ("f64", DType.F64), ("f32", DType.F32), ("f16", DType.F16), ("bf16", DType.BF16), ("i64", DType.I64), ("i32", DType.I32) })
        {
            var t = f[name];
            Assert.That(t.DType, Is.EqualTo(dt), name);
            Assert.That(t.Shape, Is.EqualTo(new Shape(2, 3)), name);
            Assert.That(t.ToDoubles(), Is.EqualTo(dt.IsFloat() ? expected : ints), name);
        }
        Assert.That(f["u8"].ToArray<byte>(), Is.EqualTo(new byte[] { 0, 1, 2, 3, 4, 5 }));
        Assert.That(f["scalar"].Shape, Is.EqualTo(Shape.Scalar));
        Assert.That(f["scalar"].Item(), Is.EqualTo(-1.5));
        Assert.That(f["empty"].Shape, Is.EqualTo(new Shape(0, 4)));
    }

    // ---- hostile input ----

    private const string Good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    private static byte[] Build(string json, byte[] data, ulong? headerSize = null)
    {
        var h = Encoding.UTF8.GetBytes(json);
        var b = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, headerSize ?? (ulong)h.Length);
        h.CopyTo(b, 8);
        data.CopyTo(b, 8 + h.Length);
        return b;
    }

    private static string Entry(string name, string dtype, string shape, string offsets) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":{offsets}}}";

    private static IEnumerable<TestCaseData> Hostile()
    {
        var d8 = new byte[8];
        yield return new TestCaseData(Array.Empty<byte>(), "shorter than").SetName("ZeroBytes");
        yield return new TestCaseData(new byte[] { 8, 0, 0 }, "shorter than").SetName("TruncatedSizeField");
        var good = Build(Good, d8);
        yield return new TestCaseData(good[..^3], "beyond the data buffer").SetName("TruncatedData");
        yield return new TestCaseData(good[..20], "beyond the end").SetName("TruncatedHeader");
        yield return new TestCaseData(Build(Good, d8, ulong.MaxValue), "exceeds the limit").SetName("HugeHeaderSize");
        yield return new TestCaseData(Build(Good, d8, 100_000_001), "exceeds the limit").SetName("HeaderSizeJustOverLimit");
        yield return new TestCaseData(Build(Good, d8, 5000), "beyond the end").SetName("HeaderSizeBeyondFile");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",", d8), "not valid JSON").SetName("InvalidJson");
        yield return new TestCaseData(Build("", d8), "not valid JSON").SetName("EmptyHeader");
        yield return new TestCaseData(Build("[1,2]", Array.Empty<byte>()), "must be a JSON object").SetName("HeaderNotObject");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", d8), "not valid JSON").SetName("TrailingJunk");
        foreach (var (where, json) in new[] { ("Name", "{\"\u00ff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"),
                                              ("Value", "{\"a\":{\"dtype\":\"F\u00ff\",\"shape\":[2],\"data_offsets\":[0,8]}}") })
        {
            var badUtf8 = Build(json, d8);
            badUtf8[Array.IndexOf(badUtf8, (byte)0xc3)] = 0xff; // U+00FF is c3 bf in UTF-8; corrupt its lead byte
            yield return new TestCaseData(badUtf8, "UTF-8").SetName("InvalidUtf8In" + where);
        }
        yield return new TestCaseData(Build("{\"a\":3}", Array.Empty<byte>()), "must be an object").SetName("EntryNotObject");
        yield return new TestCaseData(Build("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", d8), "no 'dtype'").SetName("MissingDType");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", d8), "no 'shape'").SetName("MissingShape");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", d8), "no 'data_offsets'").SetName("MissingOffsets");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", d8), "must be a string").SetName("DTypeNotString");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", d8), "must be an array").SetName("ShapeNotArray");
        yield return new TestCaseData(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\"}}", d8), "appears twice").SetName("DuplicateField");
        yield return new TestCaseData(Build("{" + Entry("a", "F8_E4M3", "[8]", "[0,8]") + "}", d8), "unknown or unsupported dtype").SetName("UnknownDType");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[-2]", "[0,8]") + "}", d8), "negative").SetName("NegativeDim");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[2.5]", "[0,8]") + "}", d8), "not an integer").SetName("FractionalDim");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[1e30]", "[0,8]") + "}", d8), "not an integer").SetName("HugeDim");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[1099511627776,1099511627776]", "[0,8]") + "}", d8), "overflows").SetName("OverflowingShape");
        yield return new TestCaseData(Build("{" + Entry("a", "U8", "[0,4294967296]", "[0,0]") + "," + Entry("b", "U8", "[8]", "[0,8]") + "}", d8), "invalid shape").SetName("DimBeyondInt32");
        yield return new TestCaseData(Build("{" + Entry("a", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") + "}", new byte[1]), "rank").SetName("RankTooHigh");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[2]", "[8,0]") + "}", d8), "begin after end").SetName("OffsetsReversed");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[2]", "[0,8,9]") + "}", d8), "[begin, end]").SetName("ThreeOffsets");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[2]", "[0,-8]") + "}", d8), "negative").SetName("NegativeOffset");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[3]", "[0,8]") + "}", d8), "needs 12").SetName("SizeMismatch");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[2]", "[0,8]") + "," + Entry("b", "F32", "[1]", "[4,8]") + "}", d8), "overlap").SetName("OverlappingOffsets");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[1]", "[0,4]") + "," + Entry("b", "F32", "[2]", "[0,8]") + "}", d8), "overlap").SetName("SameStartOffsets");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[1]", "[0,4]") + "," + Entry("b", "F32", "[1]", "[8,12]") + "}", new byte[12]), "gap").SetName("GapInOffsets");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[1]", "[4,8]") + "}", d8), "gap").SetName("GapAtStart");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[1]", "[0,4]") + "}", d8), "trailing bytes").SetName("UncoveredTail");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[4]", "[0,16]") + "}", d8), "beyond the data buffer").SetName("OffsetsBeyondFile");
        yield return new TestCaseData(Build("{" + Entry("a", "U8", "[1073741824]", "[0,1073741824]") + "}", d8), "beyond the data buffer").SetName("HugeTensorClaim");
        yield return new TestCaseData(Build("{" + Entry("a", "F64", "[268435456,8]", "[0,17179869184]") + "}", d8), "beyond the data buffer").SetName("HugerThanArrayTensorClaim");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[1]", "[0,4]") + "," + Entry("a", "F32", "[1]", "[4,8]") + "}", d8), "appears twice").SetName("DuplicateNames");
        yield return new TestCaseData(Build("{" + Entry("a", "F32", "[1]", "[0,4]") + "," + Entry("\\u0061", "F32", "[1]", "[4,8]") + "}", d8), "appears twice").SetName("DuplicateNamesEscaped");
        yield return new TestCaseData(Build("{\"__metadata__\":{\"k\":1}," + Good[1..], d8), "must be a string").SetName("MetadataValueNotString");
        yield return new TestCaseData(Build("{\"__metadata__\":[\"k\"]," + Good[1..], d8), "must be an object").SetName("MetadataNotObject");
        yield return new TestCaseData(Build("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," + Good[1..], d8), "appears twice").SetName("DuplicateMetadataKey");
        yield return new TestCaseData(Build("{\"__metadata__\":{},\"__metadata__\":{}," + Good[1..], d8), "appears twice").SetName("DuplicateMetadata");
    }

    [TestCaseSource(nameof(Hostile))]
    public void HostileFilesRaiseFormatErrors(byte[] file, string expectedMessagePart)
    {
        long before = TensorStats.LiveTensors;
        // Seekable and forward-only streams take different paths (file size known or not).
        var e1 = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new MemoryStream(file)));
        Assert.That(e1!.Message, Does.Contain(expectedMessagePart));
        var e2 = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new ForwardOnlyStream(file)));
        Assert.That(e2!.Message, Does.StartWith("safetensors:"));
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(before), "tensors made before the error are freed");
    }

    [Test]
    public void HeadersWithTooManyEntriesAreRefusedBeforeTheyAreBuilt()
    {
        // A million empty entries used to cost 1.1 GB of objects; the count is capped.
        long before = TensorStats.LiveTensors;
        var entries = string.Join(",", Enumerable.Range(0, SafeTensors.MaxEntries + 1).Select(i => Entry("t" + i, "U8", "[0]", "[0,0]")));
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new MemoryStream(Build("{" + entries + "}", []))));
        Assert.That(e!.Message, Does.Contain("more than 262,144 entries"));
        var keys = string.Join(",", Enumerable.Range(0, SafeTensors.MaxEntries + 1).Select(i => $"\"k{i}\":\"\""));
        var m = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new MemoryStream(Build("{\"__metadata__\":{" + keys + "}}", []))));
        Assert.That(m!.Message, Does.Contain("'__metadata__' has more than"));
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(before));
        // At the limit it still reads.
        var atLimit = string.Join(",", Enumerable.Range(0, 1000).Select(i => Entry("t" + i, "U8", "[0]", "[0,0]")));
        using var f = SafeTensors.Read(new MemoryStream(Build("{" + atLimit + "}", [])));
        Assert.That(f.Tensors, Has.Count.EqualTo(1000));
    }

    [Test]
    public void OnlyRegularFilesAreOpened()
    {
        var dir = Directory.CreateTempSubdirectory("st-fifo-").FullName;
        try
        {
            var fifo = Path.Combine(dir, "weights.safetensors");
            Data.HostileFiles.MakeFifo(fifo);
            var load = Task.Run(() => SafeTensors.Load(fifo));
            Assert.That(load.ContinueWith(_ => { }, TaskScheduler.Default).Wait(TimeSpan.FromSeconds(60)), Is.True, "blocked opening a FIFO");
            var e = load.Exception!.InnerException;
            Assert.That(e, Is.InstanceOf<IOException>());
            Assert.That(e!.Message, Does.Contain("is a FIFO (named pipe), not a regular file"));
            Assert.That(() => SafeTensors.Load(dir), Throws.InstanceOf<IOException>().With.Message.Contains("is a folder"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void ErrorsNameTheTensor()
    {
        var file = Build("{" + Entry("layer1.0.conv1.weight", "F32", "[3]", "[0,8]") + "}", new byte[8]);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(new MemoryStream(file)));
        Assert.That(e!.Message, Does.Contain("'layer1.0.conv1.weight'"));
    }

    [Test]
    public void WriterRejectsDuplicateAndReservedNames()
    {
        using var scope = TensorScope.Begin();
        var t = Tensor.Zeros(2);
        Assert.Throws<ArgumentException>(() => SafeTensors.Write(new MemoryStream(), new[] { Kv("a", t), Kv("a", t) }));
        Assert.Throws<ArgumentException>(() => SafeTensors.Write(new MemoryStream(), new[] { Kv("__metadata__", t) }));
    }

    private static byte[] Bytes(Tensor t)
    {
        var b = new byte[t.Bytes];
        t.Backend.CopyToHost(t, b);
        return b;
    }

    /// <summary>A stream that can only be read forwards and does not know its length (like a pipe or socket).</summary>
    private sealed class ForwardOnlyStream(byte[] data) : Stream
    {
        private int _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            // Hand out at most 5 bytes at a time so callers must loop.
            int n = Math.Min(Math.Min(count, 5), data.Length - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
