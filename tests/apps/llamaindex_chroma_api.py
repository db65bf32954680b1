"""LlamaIndex over Chroma behind FastAPI: a query engine at /query and a chat engine at /chat.

The shape of LlamaIndex's starter tutorial with a Chroma vector store: read a folder with
SimpleDirectoryReader, index it into an in-process Chroma collection with OpenAI embeddings,
``as_query_engine()`` for one-shot questions and ``as_chat_engine(chat_mode="condense_plus_context")``
with a memory per session for conversations.  It knows nothing of rag-otel.
"""

import os

import chromadb
from fastapi import FastAPI, Header
from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import BaseModel

CORPUS = os.environ.get("CORPUS_DIR", os.path.join(os.path.dirname(__file__), "corpus"))

Settings.llm = OpenAI(model="gpt-4o-mini", temperature=0)
Settings.embed_model = OpenAIEmbedding(model="text-embedding-3-small")
Settings.chunk_size = 512

chroma = chromadb.EphemeralClient()
collection = chroma.get_or_create_collection("nimbus")
storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
documents = SimpleDirectoryReader(CORPUS, filename_as_id=True).load_data()
index = VectorStoreIndex.from_documents(documents, storage_context=storage)
query_engine = index.as_query_engine(similarity_top_k=2)
memories: dict[str, ChatMemoryBuffer] = {}

app = FastAPI(title="Nimbus docs")


class Question(BaseModel):
    question: str


def sources_of(response) -> list[dict]:
    return [{"id": n.node.node_id, "score": n.score, "text": n.node.get_content()} for n in response.source_nodes]


@app.post("/query")
def query(body: Question) -> dict:
    response = query_engine.query(body.question)
    return {"answer": str(response), "sources": sources_of(response)}


@app.post("/chat")
def chat(body: Question, x_session_id: str = Header("default")) -> dict:
    memory = memories.setdefault(x_session_id, ChatMemoryBuffer.from_defaults(token_limit=3000))
    engine = index.as_chat_engine(chat_mode="condense_plus_context", memory=memory, similarity_top_k=2)
    response = engine.chat(body.question)
    return {"answer": str(response), "sources": sources_of(response)}
