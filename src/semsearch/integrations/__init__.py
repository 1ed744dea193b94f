"""semsearch inside other frameworks, each an optional extra that imports its framework only when used.

``semsearch.integrations.langchain`` (extra ``langchain``): a collection as a LangChain ``VectorStore``.
"""
