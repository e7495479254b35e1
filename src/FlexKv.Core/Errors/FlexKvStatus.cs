namespace FlexKv.Core.Errors;

/// <summary>
/// Status codes shared by the C# engine, the C ABI (<c>include/flexkv.h</c>) and the Python
/// package. 0 is success, negative values are errors; the numbers are part of the ABI.
/// </summary>
internal enum FlexKvStatus
{
    /// <summary>The call succeeded.</summary>
    Ok = 0,
    /// <summary>A pointer, length or value argument is invalid.</summary>
    InvalidArgument = -1,
    /// <summary>The handle is unknown, stale or already destroyed.</summary>
    InvalidHandle = -2,
    /// <summary>The configuration document is malformed or inconsistent.</summary>
    InvalidConfig = -3,
    /// <summary>A caller-owned output buffer is too small; the needed size was written.</summary>
    BufferTooSmall = -4,
    /// <summary>The request id is not known to the engine.</summary>
    UnknownRequest = -5,
    /// <summary>The call is not allowed in the current state (e.g. a request finished twice).</summary>
    InvalidState = -6,
    /// <summary>Memory for the cache could not be reserved.</summary>
    OutOfMemory = -7,
    /// <summary>No KV cache is registered, so no bytes can move.</summary>
    NotRegistered = -8,
    /// <summary>The engine was shut down.</summary>
    ShutDown = -9,
    /// <summary>An I/O operation failed.</summary>
    IoError = -10,
    /// <summary>The operation is not supported in this build or setup.</summary>
    NotSupported = -11,
    /// <summary>An unexpected internal error; the message says more.</summary>
    Internal = -99,
}
