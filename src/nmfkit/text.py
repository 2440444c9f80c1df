"""Text documents → a document-term matrix, with the defaults people who model topics use.

- :func:`read_documents` reads a file (one document per line, or documents separated by a line
  such as ``%`` as in fortune files and mbox-like corpora) or a folder of files (one document
  each, or split the same way), decoding with a declared encoding and naming the file and the
  byte offset when a file is not text in that encoding.
- :func:`vectorize` turns documents into TF-IDF weights or counts with scikit-learn's
  vectorisers: English stop words (scikit-learn's list plus the fragments contractions leave,
  such as ``don`` and ``ll``), ``min_df``, ``max_df``, ``max_features``; or maps new documents
  onto a fitted vocabulary (and its IDF weights).
"""

from __future__ import annotations

import pathlib

import numpy as np

__all__ = ["ENGLISH_STOP_WORDS", "read_documents", "vectorize", "stop_word_list"]

# scikit-learn's tokeniser keeps runs of 2+ word characters, so "don't" gives "don" and
# "we'll" gives "ll": these fragments carry no topic either.
_CONTRACTION_FRAGMENTS = frozenset(
    "don doesn didn isn aren wasn weren hasn haven hadn won wouldn couldn shouldn mustn "
    "needn ain ll ve re im ive youre theyre hes shes thats whats theres lets".split())


def _english():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SK

    return frozenset(SK) | _CONTRACTION_FRAGMENTS


ENGLISH_STOP_WORDS = _english()


def stop_word_list(stop_words):
    """``"english"`` → :data:`ENGLISH_STOP_WORDS`; ``None`` / ``"none"`` → None; a list stays."""
    if stop_words is None or (isinstance(stop_words, str) and stop_words.lower() == "none"):
        return None
    if isinstance(stop_words, str):
        if stop_words.lower() != "english":
            raise ValueError(f"unknown stop word list {stop_words!r}; use 'english' or 'none' "
                             "(or pass a list of words)")
        return sorted(ENGLISH_STOP_WORDS)
    return [str(w) for w in stop_words]


def _read_bytes(path: pathlib.Path) -> bytes:
    """The file's bytes; .gz/.bz2/.xz decompressed after their magic is checked, as tables are
    (a damaged or unreadable file is a ValueError naming it)."""
    from ._file_checks import DECODE_ERRORS, _raw_open, decode_error

    try:
        with _raw_open(path) as fh:
            return fh.read()
    except DECODE_ERRORS as exc:
        raise decode_error(path, exc) from None


def decode(data: bytes, path, encoding: str | None = None) -> str:
    """``data`` as text: UTF-8 (a byte-order mark dropped) unless ``encoding`` is given.

    Raises ValueError naming the file when it holds NUL bytes (binary, not text) or is not
    valid in the encoding, with the offset of the first bad byte and the fix.
    """
    import codecs

    if b"\x00" in data[:65536] and not (encoding or "").lower().startswith("utf-16"):
        raise ValueError(f"{str(path)!r} is a binary file, not text (it holds NUL bytes); "
                         "remove it from the input or convert it to text")
    enc = encoding or "utf-8"
    try:
        codecs.lookup(enc)
    except LookupError:
        raise ValueError(f"unknown text encoding {enc!r}; use a Python codec name such as "
                         "utf-8, latin-1 or cp1252") from None
    if enc.lower().replace("_", "-") in ("utf-8", "utf8"):
        enc = "utf-8-sig"
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        hint = ("pass the file's encoding with --encoding (e.g. --encoding latin-1)"
                if encoding is None else "check the file's encoding")
        raise ValueError(f"{str(path)!r} is not valid {encoding or 'UTF-8'} text (byte "
                         f"{exc.object[exc.start]:#04x} at offset {exc.start}); {hint}") from None


def _split(text: str, doc_sep: str | None) -> list:
    if doc_sep is None:
        return [line.strip() for line in text.splitlines() if line.strip()]
    docs, current = [], []
    for line in text.splitlines():
        if line.rstrip() == doc_sep:
            docs.append(" ".join(current).strip())
            current = []
        else:
            current.append(line.strip())
    docs.append(" ".join(current).strip())
    return [d for d in docs if d]


def _auto_sep(text: str):
    """``"%"`` when the text is in fortune (strfile) format — at least two lines that hold
    only ``%`` — else None."""
    count = 0
    for line in text.splitlines():
        if line.rstrip() == "%":
            count += 1
            if count >= 2:
                return "%"
    return None


def read_documents(path, *, doc_sep: str | None = None, encoding: str | None = None,
                   on_stage=None):
    """The documents of a text file or folder, and a name for each.

    Parameters
    ----------
    path : str or Path
        A file, or a folder whose (non-hidden) files are read in name order.
    doc_sep : str or None, default=None
        None: a file holds one document per non-empty line, and a folder one document per
        file. A string (e.g. ``"%"``): documents are separated by lines equal to it, in a
        file or in each file of a folder. ``"auto"``: ``"%"`` for files in fortune format
        (at least two lines holding only ``%``), else None, decided file by file.
    encoding : str or None, default=None
        The files' encoding; None reads UTF-8 (with or without a byte-order mark).
    on_stage : callable or None
        Told (one line of text) when ``"auto"`` finds a separator.

    Returns
    -------
    docs : list of str
    names : list of str
        ``doc<i>`` for the documents of one file, the file name (``name:<i>`` when split by
        ``doc_sep``) for a folder.
    """
    path = pathlib.Path(path)
    auto = doc_sep == "auto"
    found = []

    def sep_of(text, p):
        if not auto:
            return doc_sep
        sep = _auto_sep(text)
        if sep is not None:
            found.append(p.name)
        return sep

    if doc_sep is not None and (not doc_sep.strip() or "\n" in doc_sep):
        raise ValueError(f"the document separator {doc_sep!r} must be a non-empty line of "
                         "text, e.g. %")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        docs, names = [], []
        for p in files:
            text = decode(_read_bytes(p), p, encoding)
            sep = sep_of(text, p)
            if sep is None:
                docs.append(text)
                names.append(p.name)
            else:
                parts = _split(text, sep)
                docs += parts
                names += [f"{p.name}:{i}" for i in range(len(parts))]
    else:
        text = decode(_read_bytes(path), path, encoding)
        docs = _split(text, sep_of(text, path))
        names = [f"doc{i}" for i in range(len(docs))]
    if found and on_stage is not None:
        on_stage(f"documents separated by lines of '%' (fortune format) in "
                 f"{', '.join(found[:3])}{' ...' if len(found) > 3 else ''}; "
                 "--doc-sep sets another separator")
    if not docs:
        how = (f"documents separated by lines of {doc_sep!r}" if doc_sep not in (None, "auto")
               else "a folder of text files or a file with one document per line")
        raise ValueError(f"no documents found in {str(path)!r}; give {how}")
    return docs, names


def vectorize(docs, *, weighting: str = "tfidf", stop_words="english", min_df=1, max_df=1.0,
              max_features: int | None = None, vocabulary=None, idf=None, dtype=np.float64,
              source: str = "the documents"):
    """Documents → (X, vocabulary, idf): a CSR matrix (n_docs, n_words) and its columns' words.

    Parameters
    ----------
    docs : list of str
    weighting : {"tfidf", "counts"}
    stop_words : "english", None / "none", or a list of words
        "english" is :data:`ENGLISH_STOP_WORDS`.
    min_df, max_df : int or float
        Keep words found in at least ``min_df`` documents (a float: that share of them) and at
        most ``max_df`` (likewise), as scikit-learn's ``CountVectorizer``.
    max_features : int or None
        Keep the most frequent words only.
    vocabulary, idf : a fitted vocabulary (and TF-IDF weights) to map new documents onto; the
        filters above are then not used.
    dtype : float dtype of X
    source : what to call the documents in an error message (e.g. the file name)

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_docs, n_words)
    vocabulary : list of str, the word of each column
    idf : list of float or None, the IDF weights (TF-IDF only)
    """
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    if weighting not in ("tfidf", "counts"):
        raise ValueError(f"unknown text weighting {weighting!r}; use tfidf or counts")
    if vocabulary is not None:
        vec = CountVectorizer(vocabulary=list(vocabulary), dtype=dtype)
    else:
        vec = CountVectorizer(max_features=max_features, stop_words=stop_word_list(stop_words),
                              min_df=min_df, max_df=max_df, dtype=dtype)
    try:
        X = vec.fit_transform(docs)
    except ValueError as exc:  # empty vocabulary, or min_df above max_df
        msg = str(exc)
        fix = ("lower --min-df or raise --max-df" if "pruning" in msg or "max_df" in msg
               else "check that the input holds words")
        raise ValueError(f"cannot build a vocabulary from {source} ({len(docs)} documents): "
                         f"{msg.rstrip('.')}; {fix}") from None
    idf_out = None
    if weighting == "tfidf":
        tf = TfidfTransformer()
        if idf is not None:
            tf.fit(X[:1])
            tf.idf_ = np.asarray(idf, dtype=np.float64)
        else:
            tf.fit(X)
        X = tf.transform(X).astype(dtype)
        idf_out = tf.idf_.tolist()
    return X.tocsr(), list(vec.get_feature_names_out()), idf_out
