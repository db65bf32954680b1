"""A conversational retrieval chain in LangChain Expression Language, served with LangServe.

The shape of LangChain's RAG tutorials: OpenAI embeddings into an in-memory vector store, a
condense step that rewrites a follow-up into a standalone question when there is chat history,
the retriever, the docs "stuffed" into the system prompt, ChatOpenAI, a string parser.  LangServe
gives it /chat/invoke, /chat/batch and /chat/stream.  It knows nothing of rag-otel.
"""

import os
from operator import itemgetter
from pathlib import Path

from fastapi import FastAPI
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate
from langchain_core.runnables import RunnableBranch, RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langserve import add_routes
from pydantic import BaseModel, Field

CORPUS = Path(os.environ.get("CORPUS_DIR", Path(__file__).parent / "corpus"))

documents = [Document(page_content=p.read_text().split("\n", 1)[1].strip(), metadata={"source": p.name}, id=p.stem)
             for p in sorted(CORPUS.glob("*.md"))]
# check_embedding_ctx_length=False: the docs are short, and it spares tiktoken's download of its encoding
embeddings = OpenAIEmbeddings(model="text-embedding-3-small", check_embedding_ctx_length=False)
vectorstore = InMemoryVectorStore.from_documents(documents, embeddings)
retriever = vectorstore.as_retriever(search_kwargs={"k": 2})
llm = ChatOpenAI(model="gpt-4o-mini", temperature=0, stream_usage=True)  # token counts when streaming too

CONDENSE = PromptTemplate.from_template("""Given the following conversation and a follow up question, rephrase the \
follow up question to be a standalone question.

Chat History:
{chat_history}
Follow Up Input: {question}
Standalone question:""")

ANSWER = ChatPromptTemplate.from_messages([
    ("system", "You are an assistant for question-answering tasks. Use the following pieces of retrieved context "
               "to answer the question. If you don't know the answer, say that you don't know. Use three sentences "
               "maximum and keep the answer concise.\n\n{context}"),
    MessagesPlaceholder("history"),
    ("human", "{question}"),
])


def format_history(pairs):
    return "\n".join(f"Human: {h}\nAssistant: {a}" for h, a in pairs)


def as_messages(pairs):
    out = []
    for human, ai in pairs:
        out += [HumanMessage(human), AIMessage(ai)]
    return out


def format_docs(docs):
    return "\n\n".join(d.page_content for d in docs)


standalone = RunnableBranch(
    (lambda x: bool(x.get("chat_history")),
     RunnablePassthrough.assign(chat_history=lambda x: format_history(x["chat_history"])) | CONDENSE | llm
     | StrOutputParser()),
    itemgetter("question"),
)

chain = (
    RunnablePassthrough.assign(standalone=standalone)
    | RunnablePassthrough.assign(docs=itemgetter("standalone") | retriever)
    | {"context": itemgetter("docs") | RunnableLambda(format_docs),
       "history": lambda x: as_messages(x.get("chat_history") or []),
       "question": itemgetter("question")}
    | ANSWER
    | llm
    | StrOutputParser()
)


class ChatInput(BaseModel):
    question: str
    chat_history: list[tuple[str, str]] = Field(default_factory=list)


app = FastAPI(title="Nimbus chat")
add_routes(app, chain.with_types(input_type=ChatInput, output_type=str), path="/chat")
