"""A conversation replay: a LlamaIndex ``condense_plus_context`` chat engine over Chroma answers a scripted
conversation turn by turn, inside one span of the script's own (so the replay shows as one trace).

The shape of the regression scripts teams keep next to a chat app: index the docs, open one chat engine
with a memory, feed it the turns, print what it answered and from which nodes.  It knows nothing of rag-otel.

Run: OPENAI_BASE_URL=... python llamaindex_replay_script.py "first turn" "follow-up"
"""

import json
import os
import sys

import chromadb
from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI
from llama_index.vector_stores.chroma import ChromaVectorStore
from opentelemetry import trace

CORPUS = os.environ.get("CORPUS_DIR", os.path.join(os.path.dirname(__file__), "corpus"))
tracer = trace.get_tracer("replay")


def main(turns):
    Settings.llm = OpenAI(model="gpt-4o-mini", temperature=0)
    Settings.embed_model = OpenAIEmbedding(model="text-embedding-3-small")
    collection = chromadb.EphemeralClient().get_or_create_collection("replay")
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    index = VectorStoreIndex.from_documents(SimpleDirectoryReader(CORPUS, filename_as_id=True).load_data(),
                                            storage_context=storage)
    engine = index.as_chat_engine(chat_mode="condense_plus_context", similarity_top_k=2,
                                  memory=ChatMemoryBuffer.from_defaults(token_limit=3000))
    with tracer.start_as_current_span("replay"):
        for turn in turns:
            response = engine.chat(turn)
            print(json.dumps({"turn": turn, "answer": str(response),
                              "sources": [{"id": n.node.node_id, "score": n.score, "text": n.node.get_content()}
                                          for n in response.source_nodes]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
